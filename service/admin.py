"""``judge tokens add|list|revoke`` (also ``judge-admin tokens ...``): manage API tokens.

Administration of a server's own files (its database under ``JUDGE_DATA_DIR``), run on the
server's host. Kept apart from the HTTP client (``judge_client.cli``), which never loads the
database or the server's settings.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys

from service.settings import Settings, SettingsError
from service.store import open_store


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tokens(args: argparse.Namespace, settings: Settings) -> int:
    """Run a tokens action on the server's database (SQLite, or PostgreSQL when
    ``JUDGE_DATABASE_URL`` names one: every node then knows the token)."""
    return asyncio.run(_tokens(args, settings))


async def _tokens(args: argparse.Namespace, settings: Settings) -> int:
    store = await open_store(settings.database_url, settings.db_path)
    try:
        if args.action == "add":
            try:
                token = await store.tokens.add_token(args.name)
            except ValueError as e:
                print(f"judge: {e}", file=sys.stderr)
                return 1
            print(token)
            print(f"token '{args.name}' created; it is shown only once", file=sys.stderr)
        elif args.action == "list":
            for t in await store.tokens.list_tokens():
                state = "revoked " + _when(t["revoked_at"]) if t["revoked_at"] else "active"
                print(f"{t['name']}\tcreated {_when(t['created_at'])}\t{state}")
        elif args.action == "revoke":
            if not await store.tokens.revoke_token(args.name):
                print(f"judge: no active token named '{args.name}'", file=sys.stderr)
                return 1
            print(f"token '{args.name}' revoked", file=sys.stderr)
        return 0
    finally:
        await store.close()


def add_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``tokens`` command and its actions, on ``sub``."""
    tok = sub.add_parser("tokens", help="manage API tokens (stored hashed in JUDGE_DATA_DIR)")
    tok_sub = tok.add_subparsers(dest="action", required=True)
    add = tok_sub.add_parser("add", help="create a token and print it")
    add.add_argument("name")
    tok_sub.add_parser("list", help="list tokens (names and dates, never the tokens)")
    rev = tok_sub.add_parser("revoke", help="revoke a token by name")
    rev.add_argument("name")


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``tokens`` command with the settings of this environment."""
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"judge: {e}", file=sys.stderr)
        return 2
    return tokens(args, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judge-admin", description="judge server administration")
    add_token_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
