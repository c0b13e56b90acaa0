"""``python -m bot`` and ``sms-bridge``: one program, with subcommands (SPEC §4)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from dotenv import load_dotenv

from bot.config_loader import load_policy, summarize
from bot.errors import ConfigError, SettingsError, StoreError
from bot.logs import configure_logging
from bot.settings import load_settings


def run_app() -> int:
    """Load settings and policy, then serve; every startup problem is one clear message."""
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(exc.user_message, file=sys.stderr)
        print("Set them in the environment or in .env (see config/.env.example).", file=sys.stderr)
        return 2
    try:
        policy = load_policy(settings.config_path)
    except ConfigError as exc:
        print(f"sms-bridge cannot start: the policy file is invalid\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets)
    from bot.server import serve

    try:
        asyncio.run(serve(settings, policy))
    except StoreError as exc:
        print(f"sms-bridge cannot start: {exc.user_message}", file=sys.stderr)
        return 2
    return 0


def check_config(path: str | None) -> int:
    path = path or os.environ.get("SMS_BRIDGE_CONFIG") or "config/bridge.yaml"
    try:
        policy = load_policy(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"OK: {path}")
    print(summarize(policy))
    return 0


def audit(since: str | None, fmt: str) -> int:
    """Export the audit trail of the database in DATABASE_URL to stdout."""
    from bot.audit import export, parse_since
    from bot.settings import DEFAULT_DATABASE_URL
    from bot.store import open_store

    try:
        store = open_store(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    except StoreError as exc:
        print(exc.user_message, file=sys.stderr)
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
    finally:
        store.close()
    print(f"{count} rows", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sms-bridge", description="Send SMS from Slack via 2Chat")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the Slack app (the default)")
    check = commands.add_parser("check-config", help="validate the policy file")
    check.add_argument("path", nargs="?", help="policy file (default: $SMS_BRIDGE_CONFIG)")
    audit_parser = commands.add_parser("audit", help="export requests, decisions and sends")
    audit_parser.add_argument("--since", help="a duration back from now (7d) or an ISO date")
    audit_parser.add_argument("--format", choices=["csv", "json"], default="csv")
    args = parser.parse_args(argv)
    load_dotenv(".env", override=False)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "audit":
        return audit(args.since, args.format)
    return run_app()


if __name__ == "__main__":
    sys.exit(main())
