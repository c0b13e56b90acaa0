"""The program's entry points: ``python -m bot`` without settings, and ``check-config``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.appproc import ROOT, hermetic_env

SHIPPED = str(ROOT / "config" / "bridge.yaml")


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
