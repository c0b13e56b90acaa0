"""``python -m bot`` and ``sms-bridge``: one program, with subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from dotenv import load_dotenv

from bot.config import load_policy, summarize
from bot.core.model import Policy
from bot.errors import ConfigError, SettingsError, StoreError, TwoChatError
from bot.logs import configure_logging, startup_failure
from bot.settings import DEFAULT_CONFIG_PATH, load_settings
from bot.sms.twochat import e164


def run_app() -> int:
    """Load settings and policy, then serve; every startup problem is one clear message."""
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        hint = "Set them in the environment or in .env (see config/.env.example)."
        startup_failure(f"{exc.user_message}\n{hint}", os.environ)
        return 2
    missing = no_policy_file(settings.config_path)
    if missing:
        startup_failure(f"sms-bridge cannot start: {missing}", os.environ)
        return 2
    try:
        policy = load_policy(settings.config_path)
    except ConfigError as exc:
        startup_failure(f"sms-bridge cannot start: the policy file is invalid\n{exc}", os.environ)
        return 2
    configure_logging(settings.log_level, settings.secrets, settings.log_format)
    for warning in policy.warnings:
        logging.getLogger("bot.config").warning("policy: %s", warning)
    from bot.server import serve

    try:
        asyncio.run(serve(settings, policy))
    except SettingsError as exc:  # a busy PORT, or Slack refused SLACK_APP_TOKEN
        startup_failure(f"sms-bridge cannot start: {'; '.join(exc.problems)}", os.environ)
        return 1
    except StoreError as exc:
        startup_failure(f"sms-bridge cannot start: {database_message(exc)}", os.environ)
        return 2
    return 0


def check_config(path: str | None, online: bool = False, strict: bool = False) -> int:
    """Validate the policy file: its errors and exit 1, or OK, its warnings and a summary.

    Warnings (likely mistakes in a policy that still works) keep the exit status 0 unless
    ``strict``, for CI pipelines that want a clean file.
    """
    if path is None:  # a path typed on the command line is named by the loader's error
        path = os.environ.get("SMS_BRIDGE_CONFIG", "").strip() or DEFAULT_CONFIG_PATH
        missing = no_policy_file(path)
        if missing:
            print(missing, file=sys.stderr)
            return 1
    try:
        policy = load_policy(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"OK: {path}")
    for warning in policy.warnings:
        print(f"warning: {warning}")
    print(summarize(policy))
    if strict and policy.warnings:
        return 1
    return check_online(policy) if online else 0


def no_policy_file(path: str) -> str | None:
    """One line for a policy path with no file there, naming the setting that picks it (a
    bare "invalid policy" would send a newcomer looking for a syntax error)."""
    if os.path.isfile(path):
        return None
    where = f"{path} (in {os.getcwd()})" if not os.path.isabs(path) else path
    if os.environ.get("SMS_BRIDGE_CONFIG", "").strip():
        return f"no policy file at {where}, the path in SMS_BRIDGE_CONFIG"
    return f"no policy file at {where}: set SMS_BRIDGE_CONFIG to the path of your policy file"


def channel_problems(
    from_numbers: dict[str, str], channels: list[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """Compare the policy's from_numbers with the account's SMS channels: (fine, problems).

    A from_number must be one of the account's numbers, enabled, and able to send SMS.
    """
    by_number: dict[str, dict[str, Any]] = {}
    for channel in channels:
        phone = channel.get("phone_number")
        if isinstance(phone, str) and phone.strip():
            by_number[e164(phone)] = channel
    fine: list[str] = []
    problems: list[str] = []
    for name, number in from_numbers.items():
        found = by_number.get(number)
        where = f"from_numbers.{name} ({number})"
        if found is None:
            known = ", ".join(sorted(by_number)) or "none"
            problems.append(
                f"{where}: not an SMS number of this 2Chat account (its numbers: {known})"
            )
            continue
        channel = found
        label = f"2Chat channel {channel.get('uuid', '?')}"
        if channel.get("enabled") is not True:
            problems.append(f"{where}: {label} is not enabled in 2Chat")
        elif channel.get("supports_sms_out") is not True:
            problems.append(f"{where}: {label} cannot send SMS (supports_sms_out is not true)")
        else:
            fine.append(f"{where}: OK, {label}, enabled, sends SMS")
    return fine, problems


def check_online(policy: Policy) -> int:
    """``check-config --online``: the API key works and every from_number can send SMS.

    One GET /open/sms/channels call (one 2Chat credit), with TWOCHAT_API_KEY and
    TWOCHAT_API_URL from the environment; the key itself is never printed.
    """
    from bot.settings import DEFAULT_TWOCHAT_API_URL
    from bot.sms.twochat import TwoChatClient

    api_key = (os.environ.get("TWOCHAT_API_KEY") or "").strip()
    if not api_key:
        print("online check: TWOCHAT_API_KEY is not set", file=sys.stderr)
        return 2
    base_url = (os.environ.get("TWOCHAT_API_URL") or "").strip() or DEFAULT_TWOCHAT_API_URL

    async def read_channels() -> list[dict[str, Any]]:
        async with TwoChatClient(api_key, base_url) as client:
            return await client.list_channels()

    try:
        channels = asyncio.run(read_channels())
    except TwoChatError as exc:
        if exc.status == 401:
            print("online check: 2Chat rejected TWOCHAT_API_KEY (HTTP 401)", file=sys.stderr)
        else:
            print(f"online check: cannot list the account's SMS numbers: {exc}", file=sys.stderr)
        return 1
    print(f"online: TWOCHAT_API_KEY is valid; the account has {len(channels)} SMS number(s)")
    fine, problems = channel_problems(policy.from_numbers, channels)
    for line in fine:
        print(f"online: {line}")
    for problem in problems:
        print(f"online: {problem}", file=sys.stderr)
    return 1 if problems else 0


def audit(since: str | None, fmt: str) -> int:
    """Export the audit trail of the database in DATABASE_URL to stdout."""
    from bot.audit import export, parse_since
    from bot.settings import DEFAULT_DATABASE_URL
    from bot.store import open_store

    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    missing = sqlite_file_missing(url)
    if missing:
        print(f"DATABASE_URL: no database at {missing} (nothing to export)", file=sys.stderr)
        return 2
    try:
        store = open_store(url)
    except StoreError as exc:
        print(database_message(exc), file=sys.stderr)
        return 2
    try:
        start = parse_since(since, store.now()) if since else None
    except ValueError:
        print(
            f"--since {since!r}: give a duration like 7d or a date like 2026-11-01", file=sys.stderr
        )
        return 2
    try:
        count = export(store, sys.stdout, since=start, fmt=fmt)
        sys.stdout.flush()
    except BrokenPipeError:  # `sms-bridge audit | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        store.close()
    print(f"{count} rows", file=sys.stderr)
    return 0


def database_message(exc: StoreError) -> str:
    """A store error as one line that names the setting to fix."""
    message = " ".join(exc.user_message.split())
    return message if message.startswith("DATABASE_URL") else f"DATABASE_URL: {message}"


def sqlite_file_missing(url: str) -> str | None:
    """The path of a SQLite database URL whose file does not exist (opening it would
    create an empty one), else None."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(unquote(url.removeprefix("sqlite:///").split("?", 1)[0]))
    return None if path.exists() else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sms-bridge", description="Send SMS from Slack via 2Chat")
    version = f"sms-bridge {package_version('sms-bridge')}"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the Slack app (the default)")
    check = commands.add_parser("check-config", help="validate the policy file")
    check.add_argument(
        "path",
        nargs="?",
        help=f"policy file (default: $SMS_BRIDGE_CONFIG, or {DEFAULT_CONFIG_PATH} if unset)",
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="also check the 2Chat API key and that each from_number can send SMS",
    )
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    audit_parser = commands.add_parser("audit", help="export requests, decisions and sends")
    audit_parser.add_argument("--since", help="a duration back from now (7d) or an ISO date")
    audit_parser.add_argument("--format", choices=["csv", "json"], default="csv")
    for sub in (run, check, audit_parser):
        sub.add_argument("--version", action="version", version=version)
    args = parser.parse_args(argv)
    load_dotenv(".env", override=False)
    if args.command == "check-config":
        return check_config(args.path, online=args.online, strict=args.strict)
    if args.command == "audit":
        return audit(args.since, args.format)
    return run_app()
