"""An HTTP server on a bare socket, for answers no web framework gives on purpose: the
connection closed right after the request or in the middle of the answer, a redirect, or
no answer at all. The 2Chat stand-in covers every well-formed answer."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

Answer = Callable[[socket.socket], None]


def answer_with(raw: bytes) -> Answer:
    """Send ``raw`` as it is (b"" sends nothing), then let the server close the connection."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(raw)

    return answer


class RawHttpServer:
    """Reads each request whole, notes its "METHOD /path", then hands the connection to
    ``answer`` and closes it; with no ``answer`` it holds the connection, silent, until the
    server stops."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()

    def __enter__(self) -> RawHttpServer:
        threading.Thread(target=self._accept, daemon=True, name="raw-http").start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close does not
        self.listener.close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = self._read_request(conn)
            if request is None:
                return
            with self.lock:
                self.requests.append(request)
            if self.answer is None:
                self.stopping.wait()
            else:
                self.answer(conn)
        except OSError:
            pass
        finally:
            with self.lock:
                self.connections.discard(conn)
            conn.close()

    @staticmethod
    def _read_request(conn: socket.socket) -> str | None:
        """One request, body included, so closing afterwards cannot reset the connection
        before the client has written everything."""
        with conn.makefile("rb") as reader:
            request_line = reader.readline()
            if not request_line:
                return None
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reader.read(length)
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        return f"{method} {path}"
