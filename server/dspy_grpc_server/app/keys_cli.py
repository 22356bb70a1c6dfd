"""``dspy-grpc keys create|list|revoke``: managing API keys in the server's database."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..store.database import Database
from .auth import ApiKeys
from .config import Config


def add_keys_parser(commands: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    keys = commands.add_parser(
        "keys", help="create, list and revoke API keys",
        description="Manage the API keys callers present as 'authorization: Bearer <key>' when auth.enabled "
        "is true. Scopes: infer (InferenceService, LMService), programs (ProgramService), jobs (datasets, "
        "evaluations, optimizations), admin (everything, and the dashboard).",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (the only time it is shown)")
    create.add_argument("--scopes", required=True, help="comma-separated: infer, programs, jobs, admin")
    create.add_argument("--name", default="api key", help="a label to recognise the key by")
    add_common(create)
    listing = actions.add_parser("list", help="list keys (ids, names, scopes; never secrets)")
    add_common(listing)
    revoke = actions.add_parser("revoke", help="revoke a key by id (takes effect within auth.cache_ttl_s)")
    revoke.add_argument("key_id", help="the id shown by 'keys list' (the part after dgk_)")
    add_common(revoke)


async def run_keys(args: argparse.Namespace, config: Config) -> int:
    database = await Database.open(config.database_url)
    try:
        keys = ApiKeys(database)
        if args.keys_command == "create":
            record, token = await keys.create(args.name, args.scopes)
            print(f"created key {record.key_id} ({record.name}) with scopes {','.join(record.scopes)}")
            print("store it now; it cannot be shown again:")
            print(token)
        elif args.keys_command == "list":
            print(f"{'KEY ID':<14}{'SCOPES':<26}{'CREATED':<22}{'REVOKED':<22}NAME")
            for record in await keys.list():
                revoked = record.revoke_time.strftime("%Y-%m-%d %H:%M:%S") if record.revoke_time else "-"
                print(f"{record.key_id:<14}{','.join(record.scopes):<26}"
                      f"{record.create_time.strftime('%Y-%m-%d %H:%M:%S'):<22}{revoked:<22}{record.name}")
        else:
            record = await keys.revoke(args.key_id)
            print(f"revoked key {record.key_id} ({record.name})")
        return 0
    finally:
        await database.close()
