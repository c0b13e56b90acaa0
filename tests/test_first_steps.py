"""What a newcomer meets first: the Makefile finding a Python, the example .env, a policy
file that is not where the app looks, check-config's help, an empty audit."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.audit import export
from bot.cli import main
from bot.errors import SettingsError
from bot.settings import load_settings
from bot.store import open_store
from bot.store.requests import AUDIT_COLUMNS
from tests.appproc import ROOT, hermetic_env
from tests.store.helpers import new_request

CREDENTIALS = {
    "SLACK_BOT_TOKEN": "xoxb-1-token",
    "SLACK_SIGNING_SECRET": "signing-secret",
    "TWOCHAT_API_KEY": "2chat-key",
}


def fake_pythons(folder: Path, versions: dict[str, tuple[int, int] | None]) -> None:
    """Executables named python3.x: a version answers the Makefile's check as that Python
    would; None is one that does not run (a pyenv shim for a version not selected)."""
    folder.mkdir()
    for name, version in versions.items():
        script = folder / name
        if version is None:
            script.write_text("#!/bin/sh\necho 'pyenv: command not found' >&2\nexit 127\n")
        else:
            too_old = "1" if version < (3, 11) else "0"
            script.write_text(f"#!/bin/sh\nexit {too_old}\n")
        script.chmod(0o755)


def make_venv(tmp_path: Path, path: str, dry_run: bool) -> subprocess.CompletedProcess[str]:
    """`make` of a fresh virtualenv in tmp_path, with only ``path`` on PATH."""
    venv = tmp_path / "venv"
    env = {**hermetic_env(), "PATH": path}
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    flags = ["--no-print-directory", "-n"] if dry_run else ["--no-print-directory"]
    return subprocess.run(
        ["make", *flags, f"VENV={venv}", f"{venv}/.installed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def tools_folder(tmp_path: Path) -> Path:
    """Only the tools the Makefile's search needs (no Python among them)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("make", "ls", "grep", "sort", "tr", "sh"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    return tools


def test_make_picks_the_newest_python_that_runs_and_is_3_11_or_later(tmp_path: Path) -> None:
    pythons = tmp_path / "pythons"
    fake_pythons(
        pythons,
        {"python3.9": (3, 9), "python3.11": (3, 11), "python3.12": (3, 12), "python3.13": None},
    )
    result = make_venv(tmp_path, f"{pythons}:{tools_folder(tmp_path)}", dry_run=True)
    assert result.returncode == 0, result.stderr
    assert f"|| python3.12 -m venv {tmp_path / 'venv'}" in result.stdout


def test_make_says_which_python_it_needs_when_none_fits(tmp_path: Path) -> None:
    pythons = tmp_path / "pythons"
    fake_pythons(pythons, {"python3.10": (3, 10), "python3.14": None})
    result = make_venv(tmp_path, f"{pythons}:{tools_folder(tmp_path)}", dry_run=False)
    assert result.returncode != 0
    assert "sms-bridge needs Python 3.11 or later" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_the_example_env_left_as_it_is_names_each_setting_once() -> None:
    example = dotenv_values(ROOT / "config" / ".env.example")
    with pytest.raises(SettingsError) as raised:
        load_settings({key: value or "" for key, value in example.items()})
    problems = raised.value.problems
    assert problems == [
        f"{name} still has the example value from config/.env.example"
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TWOCHAT_API_KEY")
    ]


def test_unset_settings_are_still_each_named_once() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({})
    assert raised.value.problems == [
        "SLACK_BOT_TOKEN is not set",
        "SLACK_SIGNING_SECRET is not set (required in HTTP mode)",
        "TWOCHAT_API_KEY is not set",
    ]


def run_program(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=hermetic_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.app
def test_no_policy_file_at_the_default_path_says_to_set_sms_bridge_config(tmp_path: Path) -> None:
    result = run_program(cwd=tmp_path, **CREDENTIALS)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"sms-bridge cannot start: no policy file at config/bridge.yaml (in {tmp_path}): "
        "set SMS_BRIDGE_CONFIG to the path of your policy file"
    ]


@pytest.mark.app
def test_no_policy_file_where_sms_bridge_config_points_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "policy.yaml"
    result = run_program(cwd=tmp_path, SMS_BRIDGE_CONFIG=str(missing), **CREDENTIALS)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"sms-bridge cannot start: no policy file at {missing}, the path in SMS_BRIDGE_CONFIG"
    ]
    checked = run_program("check-config", cwd=tmp_path, SMS_BRIDGE_CONFIG=str(missing))
    assert checked.returncode == 1
    assert "SMS_BRIDGE_CONFIG" in checked.stderr and "invalid" not in checked.stderr


def test_check_config_help_names_the_default_it_uses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check-config", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: $SMS_BRIDGE_CONFIG, or config/bridge.yaml if unset" in help_text


def test_the_audit_of_an_empty_database_is_its_csv_header(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    out = io.StringIO()
    try:
        assert export(store, out, since=None, fmt="csv") == 0
        store.create_request(new_request())
        filled = io.StringIO()
        export(store, filled, since=None, fmt="csv")
    finally:
        store.close()
    assert out.getvalue().splitlines() == [",".join(AUDIT_COLUMNS)]
    # The same columns as a real export, which takes them from the rows themselves.
    assert next(csv.reader(io.StringIO(filled.getvalue()))) == list(AUDIT_COLUMNS)
