"""The program's entry points: ``python -m bot`` without settings, and ``check-config``."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bot.store import NewRecipient, NewRequest, open_store
from tests.appproc import ROOT, hermetic_env

SHIPPED = str(ROOT / "config" / "bridge.yaml")
pytestmark = pytest.mark.app  # every test here runs the program as a user does


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in an empty directory unless told otherwise: a .env in
    the checkout must not leak into the result."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd or tempfile.gettempdir(),
        env=hermetic_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_run_without_credentials_names_every_missing_setting(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TWOCHAT_API_KEY"):
        assert f"{name} is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_settings_do_not_echo_secrets(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "not-a-bot-token-S3CR3T", "TWOCHAT_API_KEY": "k-S3CR3T", "PORT": "x"}
    result = run(env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN must start with 'xoxb-'" in result.stderr
    assert "PORT must be a whole number" in result.stderr
    assert "S3CR3T" not in result.stderr + result.stdout


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\n")
    result = run(cwd=tmp_path)
    assert "SLACK_BOT_TOKEN" not in result.stderr
    assert "TWOCHAT_API_KEY is not set" in result.stderr


def test_invalid_policy_stops_startup_with_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "config" / "bridge.yaml").read_text().replace("max_segments: 3", "max_segmnts: 3")
    )
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "TWOCHAT_API_KEY": "k",
        "SMS_BRIDGE_CONFIG": str(bad),
    }
    result = run(env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}:" in result.stderr and "max_segmnts" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_ok_prints_summary() -> None:
    result = run("check-config", SHIPPED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")
    for word in ("alice", "db-oncall", "main"):
        assert word in result.stdout


def test_check_config_reports_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfrom_numbers:\n  main: '+1'\nsurprise: true\n")
    result = run("check-config", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3:" in result.stderr
    assert f"{bad}:4:" in result.stderr
    assert "Traceback" not in result.stderr


STARTABLE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "TWOCHAT_API_KEY": "k",
    "SMS_BRIDGE_CONFIG": SHIPPED,
    "SLACK_API_URL": "http://127.0.0.1:9/",
    "TWOCHAT_API_URL": "http://127.0.0.1:9",
}


def assert_one_clean_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if "sms-bridge cannot start" in line]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    for noise in ("Traceback", "Unclosed client session", "As you gave `client`"):
        assert noise not in result.stderr


def test_busy_port_is_one_line_naming_port(tmp_path: Path) -> None:
    with socket.create_server(("0.0.0.0", 0)) as busy:
        port = str(busy.getsockname()[1])
        result = run(env={**STARTABLE, "PORT": port}, cwd=tmp_path)
    assert result.returncode == 1
    assert_one_clean_line(result, f"PORT {port}", "address already in use")


def test_failed_postgres_connect_names_database_url(tmp_path: Path) -> None:
    env = {**STARTABLE, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"}
    result = run(env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_clean_line(result, "DATABASE_URL", "cannot connect to PostgreSQL")


def test_unwritable_sqlite_path_names_database_url(tmp_path: Path) -> None:
    env = {**STARTABLE, "DATABASE_URL": "sqlite:////proc/no-such-dir/bridge.db"}
    result = run(env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_clean_line(result, "DATABASE_URL", "/proc/no-such-dir")


def test_example_placeholders_are_refused_as_unset(tmp_path: Path) -> None:
    example = (ROOT / "config" / ".env.example").read_text()
    (tmp_path / ".env").write_text(example)
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TWOCHAT_API_KEY"):
        assert f"{name} still has the example value" in result.stderr
    assert "xoxb-your-bot-token" not in result.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["check-config"], ["audit"]])
def test_version_on_every_command(command: list[str], tmp_path: Path) -> None:
    result = run(*command, "--version", cwd=tmp_path)
    assert result.returncode == 0
    assert re.fullmatch(r"sms-bridge \d+\.\d+\.\d+\n", result.stdout)


def test_audit_refuses_a_database_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = run("audit", env={"DATABASE_URL": f"sqlite:///{missing}"}, cwd=tmp_path)
    assert result.returncode == 2
    assert f"DATABASE_URL: no database at {missing}" in result.stderr
    assert not missing.exists()


def test_audit_survives_a_closed_pipe(tmp_path: Path) -> None:
    database = tmp_path / "audit.db"
    store = open_store(f"sqlite:///{database}")
    for n in range(300):
        store.create_request(
            NewRequest(
                kind="sms",
                sender="U0DEV1",
                channel_id="C0GENERAL",
                from_name="main",
                from_number="+17137157533",
                recipients=(NewRecipient("+447700900123", "alice"),),
                text=f"text {n}",
                segments=1,
                encoding="GSM-7",
            )
        )
    store.close()
    audit = subprocess.Popen(
        [sys.executable, "-m", "bot", "audit"],
        cwd=tmp_path,
        env=hermetic_env(DATABASE_URL=f"sqlite:///{database}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert audit.stdout is not None and audit.stderr is not None
    audit.stdout.readline()
    audit.stdout.close()  # what `| head -1` does
    assert audit.wait(30) == 0
    assert b"Traceback" not in audit.stderr.read()
