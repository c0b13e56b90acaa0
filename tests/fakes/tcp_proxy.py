"""A TCP proxy on 127.0.0.1 that a test can cut and restore, to play a database outage."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    """Forwards connections to ``target``. ``cut()`` drops every open connection and refuses
    new ones (accepted and closed at once); ``restore()`` forwards again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.open = True
        self.closing = False
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()

    def __enter__(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closing = True
        self.cut()
        self.listener.close()

    def cut(self) -> None:
        with self.lock:
            self.open = False
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        with self.lock:
            self.open = True

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if not self.open:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                self.sockets.update({client, upstream})
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Shut both down before closing: closing alone does not wake the other pipe's
            # thread from its recv, and the connection (a database session holding locks)
            # would outlive the proxy.
            with self.lock:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                    self.sockets.discard(sock)
