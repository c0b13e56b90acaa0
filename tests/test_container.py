"""What can be checked of the container files without Docker: the image runs the command
the package declares, as a non-root user, with a health check that works, from sources that
exist; compose points the app at its Postgres and waits for it."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.settings import load_settings
from tests.appproc import hermetic_env

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-secret-bot",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "TWOCHAT_API_KEY": "UAK-secret-key",
}
DEFAULTS = load_settings(GOOD)


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def arguments(instruction: str) -> list[str]:
    return [args for name, args in instructions() if name == instruction]


def healthcheck_command() -> list[str]:
    (healthcheck,) = arguments("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    return command


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def interpolated(value: str) -> str:
    """A compose value with each ${VAR...} replaced, as compose would with VAR=secret1."""
    return re.sub(r"\$\{\w+[^}]*\}", "secret1", value)


@pytest.mark.app
def test_the_image_runs_a_declared_console_script() -> None:
    (cmd,) = arguments("CMD")
    command = json.loads(cmd)  # exec form, so the app itself gets SIGTERM as PID 1
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts
    assert command == ["sms-bridge", "run"]
    # "run" is a subcommand the program knows: an unknown one would exit 2.
    subprocess.run(
        [sys.executable, "-m", "bot", *command[1:], "--help"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


# An exact release and its digest: never a tag that moves (python:3.11-slim gets every patch
# release, and a release tag is rebuilt on every Debian update; Postgres numbers its releases
# major.minor).
RELEASE = {"python": r"\d+\.\d+\.\d+", "postgres": r"\d+\.\d+"}


def pinned(image: str) -> bool:
    match = re.fullmatch(r"([\w./-]+):([\w.-]+)@sha256:[0-9a-f]{64}", image)
    return bool(match and re.match(RELEASE[match[1]] + r"(-[\w.-]+)?$", match[2]))


def test_the_image_installs_the_locked_dependencies_then_the_package() -> None:
    runs = arguments("RUN")
    locked = [i for i, run in enumerate(runs) if "--require-hashes -r requirements.txt" in run]
    package = [i for i, run in enumerate(runs) if re.search(r"\bpip install --no-deps \.", run)]
    assert locked and package and locked[0] < package[0]
    assert not any(re.search(r"\bpip install \.", run) for run in runs), "would re-resolve"


def test_the_image_runs_as_a_created_numeric_non_root_user() -> None:
    users = arguments("USER")
    assert users, "the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot can only verify a numeric user"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    assert any(re.search(rf"useradd [^&]*--uid {uid}\b", run) for run in arguments("RUN"))
    names = [name for name, _ in instructions()]
    assert names.index("USER") < names.index("CMD")


def test_base_images_are_pinned_to_a_release() -> None:
    services = compose()["services"].values()
    images = [*arguments("FROM"), *(service["image"] for service in services if "image" in service)]
    assert [image.partition(":")[0] for image in images] == ["python", "postgres"]
    for image in images:
        assert pinned(image), f"{image} moves: pin a release or a digest"
    digest = "@sha256:" + "0" * 64
    for moving in ("python:3.11-slim", "postgres:16" + digest, "python:3.11.14-slim-bookworm"):
        assert not pinned(moving)


def test_the_healthcheck_asks_healthz_on_the_apps_default_port() -> None:
    command = healthcheck_command()
    script = command[-1]
    assert "/healthz" in script
    (default_port,) = re.findall(r"os\.environ\.get\('PORT', '(\d+)'\)", script)
    assert int(default_port) == DEFAULTS.port
    assert arguments("EXPOSE") == [str(DEFAULTS.port)]


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet: the test reads exit codes, not the server's log."""


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_command_passes_only_on_a_2xx(
    health_server: HTTPServer, monkeypatch: pytest.MonkeyPatch, status: int, healthy: bool
) -> None:
    monkeypatch.setattr(_Health, "status", status)
    command = healthcheck_command()
    assert command[0] == "python"  # slim has no curl; its Python is on PATH
    env = hermetic_env(PORT=str(health_server.server_address[1]))
    result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True)
    assert (result.returncode == 0) is healthy, result.stderr


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` (or a folder it is in) out of the build context."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        anywhere = pattern.startswith("**/")
        glob = pattern.removeprefix("**/")
        if any(
            fnmatch.fnmatch(prefix.rsplit("/", 1)[-1] if anywhere else prefix, glob)
            for prefix in prefixes
        ):
            return True
    return False


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(pattern.startswith("!") for pattern in ignore)  # dockerignored() ignores "!"
    for pattern in (".venv", ".git", ".env", "sms-bridge.db", "tests"):
        assert dockerignored(pattern, ignore), pattern
    copies = arguments("COPY")
    assert copies
    for copy in copies:
        *sources, _ = copy.split()
        for source in sources:
            assert not source.startswith("--"), "no COPY --from: one stage, all from the repo"
            assert (ROOT / source).exists(), source
            assert not dockerignored(source, ignore), source


def test_compose_points_the_app_at_its_postgres_and_waits_for_it() -> None:
    services = compose()["services"]
    app = services["app"]
    assert app["env_file"] == ".env"
    url = urlsplit(interpolated(app["environment"]["DATABASE_URL"]))
    db = services[url.hostname]
    assert db["image"].startswith("postgres:16.")
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.path == "/" + db["environment"]["POSTGRES_DB"]
    assert url.password == interpolated(db["environment"]["POSTGRES_PASSWORD"])
    assert url.port == 5432
    env = {**GOOD, **{key: interpolated(str(value)) for key, value in app["environment"].items()}}
    assert load_settings(env).database_url.startswith("postgres://")
    assert app["depends_on"] == {url.hostname: {"condition": "service_healthy"}}
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in compose()["volumes"]


def test_compose_serves_the_apps_port_and_waits_out_its_shutdown_grace() -> None:
    app = compose()["services"]["app"]
    port = int(app["environment"].get("PORT", DEFAULTS.port))
    assert f"{port}:{port}" in app["ports"]
    assert port == DEFAULTS.port  # what the image's HEALTHCHECK asks when PORT is unset
    grace = re.fullmatch(r"(\d+)s", app["stop_grace_period"])
    assert grace and int(grace.group(1)) > DEFAULTS.shutdown_grace_seconds


def test_the_compose_pitfalls_are_documented_with_the_names_compose_uses() -> None:
    """Placeholders left in .env make compose restart the app in a loop, and a password
    changed after the first `up` needs ALTER USER: the container docs say both, with the
    user and database compose really creates."""
    docs = " ".join((ROOT / "docs" / "operations.md").read_text().split())
    db = compose()["services"]["postgres"]["environment"]
    user, name = db["POSTGRES_USER"], db["POSTGRES_DB"]
    assert f'psql -U {user} -d {name} -c "ALTER USER {user} PASSWORD' in docs
    assert "unless-stopped` starts it again, in a loop" in docs
    assert compose()["services"]["app"]["restart"] == "unless-stopped"
