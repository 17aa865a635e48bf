"""The `quanyi` command: serve, migrate, seed-demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from config import Settings
from services.database import Database
from services.demo import seed_demo
from services.migrate import upgrade
from services.secret_box import SecretBox

log = logging.getLogger("quanyi")


def _seed(settings: Settings) -> bool:
    async def go() -> bool:
        db = Database.connect(settings)
        try:
            return await seed_demo(db, SecretBox(settings.secret_key))
        finally:
            await db.dispose()

    return asyncio.run(go())


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    upgrade(settings.database_url)
    print("database is at the newest schema")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    loaded = _seed(settings)
    print("demo data loaded" if loaded else "the catalog already has products: nothing loaded")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from domain.access import Role
    from services.keys import KeyError_, issue_key

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    role = Role(args.role.upper())

    async def go() -> str:
        db = Database.connect(settings)
        try:
            async with db.sessions() as session, session.begin():
                issued = await issue_key(session, role=role, channel=args.channel, name=args.name)
            return issued.plaintext
        finally:
            await db.dispose()

    try:
        plaintext = asyncio.run(go())
    except KeyError_ as error:
        print(f"quanyi: {error}", file=sys.stderr)
        return 2
    print(f"{role.value} key for {args.channel or 'all channels'} (shown once; store it safely):")
    print(plaintext)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.demo:
        # Workers read their settings from the environment.
        os.environ["QUANYI_DEMO"] = "1"
        os.environ["QUANYI_GRAPHIQL"] = "1"
    settings = Settings.from_env()
    if settings.is_sqlite:
        # The embedded database migrates itself; production runs `quanyi migrate` first.
        upgrade(settings.database_url)
    if args.demo and _seed(settings):
        print("demo data loaded", flush=True)
    where = f"http://{args.host}:{args.port}"
    print(f"Quanyi on {where}/graphql" + ("  (GraphiQL: open it in a browser)" if settings.graphiql else ""), flush=True)
    uvicorn.run(
        "gateway:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="quanyi", description="GraphQL gateway for digital entitlements")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="load demo data and turn GraphiQL on")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database to the newest schema")
    migrate.set_defaults(run=cmd_migrate)

    seed = commands.add_parser("seed-demo", help="load the demo catalog, channels and codes")
    seed.set_defaults(run=cmd_seed_demo)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="issue a key; it is printed once, on the last line")
    create.add_argument("--role", required=True, type=str.upper, choices=["ADMIN", "PARTNER", "STOREFRONT"])
    create.add_argument("--channel", help="the channel a PARTNER or STOREFRONT key is bound to")
    create.add_argument("--name", default="", help="a note on who holds the key")
    create.set_defaults(run=cmd_keys_create)
    return root


def run(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    try:
        sys.exit(args.run(args))
    except ValueError as error:  # configuration mistakes: say what is wrong, no traceback
        print(f"quanyi: {error}", file=sys.stderr)
        sys.exit(2)
