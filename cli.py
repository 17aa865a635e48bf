"""The `quanyi` command: serve, migrate, seed-demo, keys, import-codes, import-catalog, export-catalog,
coupons generate, verify-draws, supplier-sim, supplier-config, payment-sim, payment-config, marketplace-sim,
marketplace-config, reseal-secrets."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from datetime import UTC, datetime

from config import Settings, log_settings
from services.core.database import Database
from services.core.migrate import newest_revision, upgrade
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo

if TYPE_CHECKING:
    from broker import Broker

log = logging.getLogger("quanyi")


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[tuple[Database, Broker]]:
    """The database and the broker a command works with, both closed when it is done."""
    from broker import connect

    db = Database.connect(settings)
    broker = connect(settings.redis_url, prefix=settings.broker_prefix)
    await broker.start()
    try:
        yield db, broker
    finally:
        await broker.close()
        await db.dispose()


def _seed(settings: Settings) -> bool:
    async def go() -> bool:
        db = Database.connect(settings)
        try:
            return await seed_demo(db, SecretBox(settings.secret_key, settings.old_secret_keys))
        finally:
            await db.dispose()

    return asyncio.run(go())


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    applied = upgrade(settings.database_url)
    if applied:
        print(f"database migrated to {applied[-1]} ({len(applied)} migration{'s' * (len(applied) != 1)} applied)")
    else:
        print(f"database is at the newest schema already ({newest_revision()})")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    loaded = _seed(settings)
    print("demo data loaded" if loaded else "the catalog already has products: nothing loaded")
    return 0


def cmd_reseal_secrets(args: argparse.Namespace) -> int:
    """Seal every secret under the current QUANYI_SECRET_KEY, while the gateways serve."""
    from services.core import reseal

    settings = Settings.from_env()
    box = SecretBox(settings.secret_key, settings.old_secret_keys)

    async def go() -> tuple[reseal.Resealed, int]:
        db = Database.connect(settings)
        try:
            done = await reseal.reseal(db, box, batch=args.batch,
                                       progress=lambda d: print(f"{d.codes} codes re-sealed", flush=True))
            return done, await reseal.left(db, box)
        finally:
            await db.dispose()

    done, remaining = asyncio.run(go())
    print(f"re-sealed {done.codes} codes, {done.suppliers} supplier secrets and {done.marketplaces} marketplace "
          f"app secrets; {remaining} left under old keys")
    if remaining:
        print("run it again (rows in use were skipped)", file=sys.stderr)
        return 1
    if settings.old_secret_keys:
        print("every secret is under the current key: QUANYI_SECRET_KEYS_OLD can be removed")
    return 0


def _future_instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time with its offset, e.g. +08:00")
    if moment <= datetime.now(UTC):
        raise argparse.ArgumentTypeError("a key expires in the future")
    return moment


def cmd_keys_create(args: argparse.Namespace) -> int:
    from domain.access import Role
    from services.access.keys import KeyError_, issue_key

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    role = Role(args.role.upper())

    async def go() -> str:
        db = Database.connect(settings)
        try:
            async with db.sessions() as session, session.begin():
                issued = await issue_key(
                    session, role=role, channel=args.channel, name=args.name, expires_at=args.expires_at
                )
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

    from services.core import logs
    from transport.http_protocol import OneSendHttp
    from transport.metrics import prepare_multiprocess_directory
    from transport.websocket import GraphQLWebSocket

    if args.demo:
        # Workers read their settings from the environment.
        os.environ["QUANYI_DEMO"] = "1"
        os.environ["QUANYI_GRAPHIQL"] = "1"
    if args.demo and not os.environ.get("QUANYI_PUBLIC_URL"):
        # The demo's simulated suppliers call back here.
        os.environ["QUANYI_PUBLIC_URL"] = f"http://{args.host}:{args.port}"
    log_format, log_level = log_settings(os.environ)
    logs.configure(log_format, log_level)  # before the settings are read: they may warn
    settings = Settings.from_env()
    if settings.is_sqlite:
        # The embedded database migrates itself; production runs `quanyi migrate` first.
        upgrade(settings.database_url)
    if args.demo and _seed(settings):
        _say(log_format, "demo data loaded")
    # Several workers add up their metrics through a shared directory (transport/metrics.py).
    prepare_multiprocess_directory(args.workers)
    where = f"http://{args.host}:{args.port}"
    _say(log_format, f"Quanyi on {where}/graphql" + ("  (GraphiQL: open it in a browser)" if settings.graphiql else ""))
    uvicorn.run(
        "gateway:create_app",
        factory=True,
        http=OneSendHttp,  # an answer's headers and body in one send
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=logs.uvicorn_config(log_format),
        access_log=False,  # the gateway logs each request itself, with its request id
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        # uvicorn refuses (1009) a WebSocket message over the gateway's bound before reading
        # all of it; the gateway's own check covers servers started some other way.
        ws_max_size=GraphQLWebSocket.max_message_bytes,
    )
    return 0


def _say(log_format: str, message: str) -> None:
    """A line for whoever started the server: printed, or a log line where the logs are JSON,
    so that every line of the process's output is one a log pipeline can read."""
    if log_format == "json":
        logging.getLogger("quanyi").info(message)
    else:
        print(message, flush=True)


def cmd_import_codes(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from services.core.progress import TerminalProgress
    from services.inventory.csv_import import CsvImport, Report, import_csv

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    job = CsvImport(Path(args.file), args.sku, batch_size=args.batch, resume=args.resume)

    async def go() -> Report:
        async with connected(settings) as (db, broker):
            progress = TerminalProgress(f"{args.sku}:")
            return await import_csv(db, broker, SecretBox(settings.secret_key, settings.old_secret_keys), job, progress)

    started = time.monotonic()
    try:
        report = asyncio.run(go())  # an unusable file or SKU raises ValueError: exit 2
    except (SQLAlchemyError, OSError) as error:
        # The driver's own message: SQLAlchemy's would list a whole batch of parameters.
        reason = error.orig if isinstance(error, DBAPIError) else error
        print(f"quanyi: the import stopped: {str(reason)[:500]}", file=sys.stderr)
        print(f"quanyi: committed batches stay; `--resume` continues after them "
              f"({job.checkpoint_path})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nquanyi: interrupted; `--resume` continues after the last committed batch",
              file=sys.stderr)
        return 130
    seconds = time.monotonic() - started
    totals = report.totals
    if report.already_complete:
        print(f"{job.path} was imported completely before (see {job.checkpoint_path}); "
              "nothing to do")
    elif report.resumed_after:
        print(f"resumed after row {report.resumed_after}")
    print(f"imported:   {totals.imported}")
    print(f"duplicates: {totals.duplicates}")
    print(f"invalid:    {totals.invalid}")
    if totals.blank:
        print(f"blank rows: {totals.blank}")
    rejected = totals.duplicates + totals.invalid
    print(f"rejects:    {job.rejects_path}" + ("" if rejected else " (none)"))
    print(f"time:       {seconds:.1f} s, {report.rows_read / max(seconds, 1e-6):,.0f} rows/s")
    return 0


def cmd_trusted_documents(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from sqlalchemy import select

    from models import ApiKey
    from resolvers import build_schema
    from resolvers.documents import check_document
    from services.core.unit_of_work import UnitOfWork
    from services.documents import trusted
    from services.documents.trusted import EVERYONE, TRUSTED_DOCUMENTS_CHANGED, Document

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    schema = build_schema()._schema
    documents: list[Document] = []
    problems: list[str] = []
    for name in args.files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{name}: cannot be read: {error}")
            continue
        if path.suffix.lower() != ".json":
            texts = [(name, None, text)]
        else:
            # Apollo's persisted query manifest: {"format": "apollo-persisted-query-manifest", "version": 1,
            # "operations": [{"id": "<sha256>", "name": …, "type": …, "body": "…"}]}
            try:
                manifest = json.loads(text)
                operations = manifest["operations"]
                texts = [(f"{name}: operation {index}", op.get("id"), op["body"]) for index, op in enumerate(operations)]
            except (ValueError, KeyError, TypeError, AttributeError):
                problems.append(f"{name}: not a persisted query manifest (format apollo-persisted-query-manifest)")
                continue
        for where, declared, body in texts:
            checked = check_document(schema, body, max_tokens=settings.limits.max_tokens) \
                if isinstance(body, str) else "has no body"
            if isinstance(checked, str):
                problems.append(f"{where}: {checked}")
            elif declared is not None and declared != checked.digest:
                problems.append(f"{where}: its id is not the SHA-256 of its body")
            else:
                documents.append(checked)
    if problems or not documents:
        for problem in problems or ["no documents given"]:
            print(problem)
        print("nothing was registered")
        return 1

    async def go() -> int:
        async with connected(settings) as (db, broker):
            if args.key:
                async with db.fresh_sessions() as session:
                    active = await session.scalar(
                        select(ApiKey.id).where(ApiKey.prefix == args.key, ApiKey.revoked_at.is_(None))
                    )
                if active is None:
                    return -1
            async with UnitOfWork(db, broker) as uow:
                rows = await trusted.register(uow.session, documents, key_prefix=args.key or EVERYONE, actor="cli")
                uow.publish(TRUSTED_DOCUMENTS_CHANGED, b"")
            return len(rows)

    count = asyncio.run(go())
    if count < 0:
        print(f"quanyi: no active key with the prefix {args.key!r}", file=sys.stderr)
        return 2
    print(f"{count} documents trusted for {'the key ' + args.key if args.key else 'every caller'}")
    return 0


def cmd_import_catalog(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from services.catalog.catalog_file import UnusableFile
    from services.catalog.import_file import import_file
    from services.core.progress import TerminalProgress

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    path = Path(args.file)

    async def go():  # type: ignore[no-untyped-def]
        async with connected(settings) as (db, broker):
            return await import_file(db, broker, path, dry_run=args.dry_run,
                                     progress=TerminalProgress(f"{path.name}:", unit="changes"),
                                     seeds=SecretBox(settings.secret_key, settings.old_secret_keys))

    started = time.monotonic()
    try:
        outcome = asyncio.run(go())
    except UnusableFile as error:
        print(f"quanyi: {error}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    if outcome.invalid:
        for line in outcome.invalid:
            print(line)
        print(f"invalid:    {len(outcome.invalid)} problems; nothing was imported")
        return 1
    if args.dry_run:
        for line in outcome.changes:
            print(line)
    assert outcome.plan is not None
    for kind, counts in outcome.plan.counts().items():
        print(f"{kind + ':':<12}{counts['CREATE']} created, {counts['UPDATE']} updated, {counts['UNCHANGED']} unchanged"
              if not args.dry_run else
              f"{kind + ':':<12}{counts['CREATE']} to create, {counts['UPDATE']} to update, {counts['UNCHANGED']} unchanged")
    print(f"records:    {outcome.lines}")
    if args.dry_run:
        print("dry run:    nothing was written")
    print(f"time:       {seconds:.1f} s, {outcome.lines / max(seconds, 1e-6):,.0f} records/s")
    return 0


def cmd_export_catalog(args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.catalog import catalog_file
    from services.catalog.export import catalog_records

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    path = Path(args.file)
    catalog_file.file_format(path)  # an unknown extension stops here, before any reading

    async def go() -> int:
        db = Database.connect(settings)
        try:
            async with db.fresh_sessions() as session:
                return catalog_file.write(path, await catalog_records(session))
        finally:
            await db.dispose()

    count = asyncio.run(go())
    print(f"{count} records written to {path}")
    return 0


def cmd_risk(args: argparse.Namespace) -> int:
    """Train, activate and watch the risk model (README "Risk model")."""
    import json
    from datetime import timedelta
    from pathlib import Path

    from broker import connect
    from services.risk import commands, models
    from services.risk.models import MODEL_CHANGED

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    now = datetime.now(UTC)

    async def announce() -> None:
        broker = connect(settings.redis_url, prefix=settings.broker_prefix)
        try:
            await broker.publish(MODEL_CHANGED, b"1")
        finally:
            await broker.close()

    async def go() -> int:
        db = Database.connect(settings)
        try:
            if args.risk_command == "train":
                if args.dataset:
                    model = await commands.train_from_file(Path(args.dataset), version=args.version, trees=args.trees)
                else:
                    async with db.fresh_sessions() as session:
                        model = await commands.train_from_database(
                            session, version=args.version, trees=args.trees, now=now)
                async with db.sessions() as session, session.begin():
                    await models.store_model(session, model, activate=args.activate, now=now)
                metrics = ", ".join(f"{k} {v}" for k, v in model.metrics.items())
                print(f"model {model.version} stored{' and active' if args.activate else ''} ({metrics})")
            elif args.risk_command == "activate":
                async with db.sessions() as session, session.begin():
                    await models.activate_model(session, None if args.version == "none" else args.version, now=now)
                print("no model active" if args.version == "none" else f"model {args.version} active")
            elif args.risk_command == "models":
                async with db.fresh_sessions() as session:
                    for stored in await models.stored_models(session):
                        print(f"{stored.version}{' (active)' if stored.active else ''}  {stored.created_at:%Y-%m-%d %H:%M}"
                              f"  {json.dumps(stored.metrics, sort_keys=True)}")
            else:
                async with db.fresh_sessions() as session:
                    report = await commands.shadow_report(session, since=timedelta(days=args.days), now=now)
                print("\n".join(report.lines()))
        finally:
            await db.dispose()
        if args.risk_command in ("activate", "train") and (args.risk_command == "activate" or args.activate):
            await announce()
        return 0

    return asyncio.run(go())


def cmd_supplier_sim(args: argparse.Namespace) -> int:
    import uvicorn

    from suppliers.simulator import create_simulator

    secret = args.secret or os.environ.get("QUANYI_SUPPLIER_SIM_SECRET", "")
    if not secret:
        raise ValueError("give the shared secret: --secret or QUANYI_SUPPLIER_SIM_SECRET")
    app = create_simulator(
        secret, seed=args.seed, mode=args.mode, latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms, fail_rate=args.fail_rate,
    )
    print(f"Supplier simulator on http://{args.host}:{args.port} ({args.mode} mode, "
          f"latency {args.latency_ms} ms, fail rate {args.fail_rate}); "
          f"faults: http://{args.host}:{args.port}/control", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=5)
    return 0


def cmd_payment_sim(args: argparse.Namespace) -> int:
    import uvicorn

    from providers.sim_server import create_payment_sim

    base = f"http://{args.host}:{args.port}"
    app = create_payment_sim(Path(args.keys), base, args.wechat_app_id or ["wxd0c0mini0000001"],
                             [float(s) for s in args.schedule.split(",")] if args.schedule else None)
    print(f"WeChat Pay simulator on {base}/wechatpay, Alipay simulator on {base}/alipay; keys and settings "
          f"in {Path(args.keys).resolve()}/payment.env (for `quanyi payment-config`)", flush=True)
    # Both simulators start and stop with the server (their notification deliveries).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def cmd_payment_config(args: argparse.Namespace) -> int:
    from providers.base import Provider
    from services.payments.accounts import EVERY_CHANNEL, configure
    from services.payments.provider_settings import account_settings

    provider = {"wechatpay": Provider.WECHAT_PAY, "alipay": Provider.ALIPAY}[args.provider]
    values = account_settings(provider, os.environ)
    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def go() -> None:
        db = Database.connect(settings)
        try:
            async with db.sessions() as session, session.begin():
                await configure(session, SecretBox(settings.secret_key, settings.old_secret_keys),
                                scope=args.channel or EVERY_CHANNEL, **values)
        finally:
            await db.dispose()

    asyncio.run(go())
    print(f"{args.provider} app {values['app_id']} now serves {'channel ' + args.channel if args.channel else 'every channel'}"
          " (keys sealed in the database; restart running gateways to use it)")
    return 0


def cmd_supplier_config(args: argparse.Namespace) -> int:
    from services.fulfilment.supplier_settings import configure

    secret = os.environ.get("QUANYI_SUPPLIER_SECRET", "")
    if not secret:
        raise ValueError("give the supplier's signing secret in QUANYI_SUPPLIER_SECRET")
    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def go() -> None:
        from services.core.events import SUPPLIERS_CHANGED

        async with connected(settings) as (db, broker):
            async with db.sessions() as session, session.begin():
                await configure(session, SecretBox(settings.secret_key, settings.old_secret_keys), args.code, base_url=args.base_url,
                                secret=secret, timeout_seconds=args.timeout)
            # Gateways sharing this Redis build the supplier's adapter again at once.
            await broker.publish(SUPPLIERS_CHANGED, args.code.encode())

    asyncio.run(go())
    follows = "running gateways use it at once" if settings.redis_url else "restart running gateways to use it"
    print(f"supplier {args.code} now at {args.base_url} ({follows}; `updateSupplier` applies without a restart)")
    return 0


def cmd_marketplace_sim(args: argparse.Namespace) -> int:
    import uvicorn

    from marketplaces.simulator import create_marketplace

    secret = args.app_secret or os.environ.get("QUANYI_MARKETPLACE_SIM_SECRET", "")
    if not secret:
        raise ValueError("give the app secret: --app-secret or QUANYI_MARKETPLACE_SIM_SECRET")
    app = create_marketplace(
        args.app_key, secret, seed=args.seed, latency_ms=args.latency_ms, duplicate_rate=args.duplicate_rate,
        pull_fail_rate=args.fail_rate, ship_fail_rate=args.fail_rate, failure=args.failure,
        push_url=args.push_url or "",
    )
    base = f"http://{args.host}:{args.port}"
    print(f"Marketplace simulator on {base}/router/rest (app key {args.app_key}; latency {args.latency_ms} ms, "
          f"duplicates {args.duplicate_rate}, failures {args.fail_rate} as {args.failure}); "
          f"buy with POST {base}/control/trades, faults: {base}/control", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def cmd_marketplace_config(args: argparse.Namespace) -> int:
    from services.marketplaces import connections

    secret = os.environ.get("QUANYI_MARKETPLACE_APP_SECRET", "")
    if not secret:
        raise ValueError("give the marketplace's app secret in QUANYI_MARKETPLACE_APP_SECRET")
    outer_ids: dict[str, str] = {}
    for pair in args.outer_id or []:
        outer, sep, sku = pair.partition("=")
        if not sep or not outer or not sku:
            raise ValueError(f"--outer-id is OUTER_ID=SKU_CODE, not {pair!r}")
        outer_ids[outer] = sku
    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def go() -> None:

        async with connected(settings) as (db, broker):
            async with db.sessions() as session, session.begin():
                await connections.configure(
                    session, SecretBox(settings.secret_key, settings.old_secret_keys), channel=args.channel,
                    base_url=args.endpoint, app_key=args.app_key, app_secret=secret, now=datetime.now(UTC),
                    poll_seconds=args.poll_seconds, timeout_seconds=args.timeout, outer_ids=outer_ids,
                )
            await broker.publish(connections.TOPIC, b"")

    try:
        asyncio.run(go())
    except connections.ConfigError as error:
        raise ValueError(str(error)) from None
    print(f"channel {args.channel} now pulls its marketplace at {args.endpoint} every {args.poll_seconds} s "
          f"(app key {args.app_key}; the secret stored encrypted); pushes go to /marketplaces/{args.channel}/push")
    return 0


def cmd_coupons_generate(args: argparse.Namespace) -> int:
    """Generate single-use codes of a campaign into a CSV file, readable by its owner only.

    The codes exist nowhere else (the database keeps digests), so the file is written in full
    before the codes are committed, and renamed into place after: a failure leaves either no
    codes or a complete file, never codes nobody can hand out.
    """
    from sqlalchemy import select

    from broker import MemoryBroker
    from domain.campaigns import CampaignError
    from models import Campaign
    from schema.relay import decode_pk
    from services.campaigns.admin import generate_codes, write_codes_csv
    from services.core.unit_of_work import UnitOfWork

    target = Path(args.out)
    if target.exists():
        print(f"quanyi: {target} exists; codes are never written over a file", file=sys.stderr)
        return 2
    campaign_id = int(args.campaign) if args.campaign.isdigit() else decode_pk(args.campaign, "Campaign", field="campaign")
    settings = Settings.from_env()
    partial = target.with_name(f".{target.name}.partial")

    async def go() -> int:
        db = Database.connect(settings)
        try:
            async with UnitOfWork(db, MemoryBroker()) as uow:
                campaign = await uow.session.scalar(select(Campaign).where(Campaign.id == campaign_id))
                if campaign is None:
                    raise CampaignError("campaign", f"no campaign {args.campaign}")
                codes = await generate_codes(uow.session, campaign.id, args.count, now=datetime.now(UTC))
                partial.touch(mode=0o600)
                write_codes_csv(partial, campaign, codes)
            partial.replace(target)
            return len(codes)
        finally:
            partial.unlink(missing_ok=True)
            await db.dispose()

    try:
        count = asyncio.run(go())
    except CampaignError as error:
        print(f"quanyi: {error.field}: {error.message}", file=sys.stderr)
        return 2
    print(f"{count} codes written to {target}")
    return 0


def cmd_verify_draws(args: argparse.Namespace) -> int:
    """Check revealed blind box rounds from a saved `drawRounds` answer, with nothing of ours
    but the published algorithm (domain/draws.py, docs/draws.md)."""
    from domain.draws import check_round

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    answer = json.loads(text)
    found = answer.get("data", answer) if isinstance(answer, dict) else answer
    if isinstance(found, dict) and "lottery" in found:
        return _verify_lottery(found["lottery"])
    rounds = found.get("drawRounds", found) if isinstance(found, dict) else found
    rounds = rounds if isinstance(rounds, list) else [rounds]
    failed = 0
    for round_ in rounds:
        if round_.get("status") != "REVEALED":
            print(f"round {round_.get('number')}: {round_.get('status')}, seed not revealed yet; skipped")
            continue
        problems = check_round(round_)
        draws = len(round_.get("draws") or [])
        if problems:
            failed += 1
            print(f"round {round_.get('number')}: {len(problems)} of {draws} draws do not verify")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"round {round_.get('number')}: the seed opens the commitment; all {draws} draws verify")
    return 1 if failed else 0


def _verify_lottery(lottery: dict[str, object]) -> int:
    from domain.draws import check_lottery
    from schema.relay import decode_pk

    problems = check_lottery(lottery, decode_pk(str(lottery.get("id")), "Lottery"))
    if problems:
        print("the lottery does not verify:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"the seed opens the commitment; the winners of {lottery.get('entryCount')} entries verify: "
          f"{lottery.get('winningNumbers')}")
    return 0


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 50_000:
        raise argparse.ArgumentTypeError("between 1 and 50000")
    return value


def _milliseconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("0 or more")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("between 0 and 1")
    return value


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

    reseal = commands.add_parser(
        "reseal-secrets", help="seal card codes, supplier and marketplace secrets under the current QUANYI_SECRET_KEY",
    )
    reseal.add_argument("--batch", type=int, default=500, help="codes per transaction (default 500)")
    reseal.set_defaults(run=cmd_reseal_secrets)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="issue a key; it is printed once, on the last line")
    create.add_argument("--role", required=True, type=str.upper, choices=["ADMIN", "PARTNER", "STOREFRONT"])
    create.add_argument("--channel", help="the channel a PARTNER or STOREFRONT key is bound to")
    create.add_argument("--name", default="", help="a note on who holds the key")
    create.add_argument("--expires-at", type=_future_instant, default=None,
                        help="when the key stops working, ISO 8601 with its offset (2027-01-01T00:00:00+08:00)")
    create.set_defaults(run=cmd_keys_create)

    codes = commands.add_parser(
        "import-codes",
        help="add card codes from a CSV file to a SKU's pool",
        description="Columns: secret (required), number, expires_at (ISO 8601 with a time "
        "zone), uses; or one column of secrets without a header. Rejected rows go to "
        "FILE.rejects.csv, progress to FILE.checkpoint.",
    )
    codes.add_argument("--sku", required=True, help="the SKU's code, e.g. STEAM-50")
    codes.add_argument("file", help="the CSV file")
    codes.add_argument("--batch", type=_batch_size, default=5_000,
                       help="rows per transaction (default 5000)")
    codes.add_argument("--resume", action="store_true",
                       help="continue after the last batch an earlier run committed")
    codes.set_defaults(run=cmd_import_codes)

    catalog_in = commands.add_parser(
        "import-catalog",
        help="create or update the catalog from a file (JSON Lines or CSV), all or nothing",
        description="Records of channels, suppliers, brands, categories, products, SKUs and listings, "
        "matched by code: new ones are created, changed ones updated, the rest left alone. A file "
        "with any invalid line imports nothing and lists every invalid line with its reasons.",
    )
    catalog_in.add_argument("file", help="FILE.jsonl (or .ndjson) or FILE.csv, as export-catalog writes it")
    catalog_in.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    catalog_in.set_defaults(run=cmd_import_catalog)

    documents = commands.add_parser(
        "trusted-documents",
        help="register GraphQL documents as trusted (QUANYI_TRUSTED_DOCUMENTS): .graphql files or "
        "Apollo persisted query manifests (.json)",
    )
    documents.add_argument("files", nargs="+", help="FILE.graphql (one document each) or manifest FILE.json")
    documents.add_argument("--key", help="the prefix of the key they are for (qy_<prefix>_…); default: every caller")
    documents.set_defaults(run=cmd_trusted_documents)

    risk = commands.add_parser("risk", help="the learned risk model").add_subparsers(dest="risk_command", required=True)
    risk_train = risk.add_parser("train", help="train a model on labelled outcomes and store it")
    risk_train.add_argument("--dataset", help="labelled attempts, JSON Lines (bench/fraud_data.py); default: the database")
    risk_train.add_argument("--version", help="the model's version name (default: a digest of its data)")
    risk_train.add_argument("--trees", type=int, default=120)
    risk_train.add_argument("--activate", action="store_true", help="make it the model every gateway scores with")
    risk_activate = risk.add_parser("activate", help="make a stored model the active one ('none': no model)")
    risk_activate.add_argument("version")
    risk.add_parser("models", help="list the stored models")
    risk_report = risk.add_parser("shadow-report", help="what enforcing the shadow model rules would change")
    risk_report.add_argument("--days", type=int, default=7)
    for each in (risk_train, risk_activate, risk_report):
        each.set_defaults(run=cmd_risk)
    risk.choices["models"].set_defaults(run=cmd_risk)

    coupons = commands.add_parser("coupons", help="campaigns' coupon codes").add_subparsers(
        dest="coupons_command", required=True)
    generate = coupons.add_parser("generate", help="generate single-use codes of a campaign into a CSV file")
    generate.add_argument("--campaign", required=True, help="the campaign's id (number or global ID)")
    generate.add_argument("--count", type=int, required=True)
    generate.add_argument("--out", required=True, help="a new CSV file (readable by its owner only)")
    generate.set_defaults(run=cmd_coupons_generate)

    verify = commands.add_parser(
        "verify-draws", help="recompute a blind box's or a lottery's draws from a saved drawRounds or lottery answer",
    )
    verify.add_argument("file", help="the JSON answer of drawRounds(skuId: …) with its draws, or of lottery(id: …) "
                                     "with id, status, commitment, seed, entryCount, winners and winningNumbers; - for stdin")
    verify.set_defaults(run=cmd_verify_draws)

    catalog_out = commands.add_parser(
        "export-catalog", help="write the catalog to a file (JSON Lines or CSV) that import-catalog reads back",
    )
    catalog_out.add_argument("file", help="FILE.jsonl (or .ndjson) or FILE.csv")
    catalog_out.set_defaults(run=cmd_export_catalog)

    sim = commands.add_parser(
        "supplier-sim",
        help="run a simulated top-up supplier (signed JSON over HTTP, faults on demand)",
        description="The shared secret comes from --secret or QUANYI_SUPPLIER_SIM_SECRET. "
        "Faults can be changed while it runs: POST /control.",
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8100)
    sim.add_argument("--secret", help="the shared signing secret (prefer the environment)")
    sim.add_argument("--latency-ms", type=_milliseconds, default=50)
    sim.add_argument("--jitter-ms", type=_milliseconds, default=0)
    sim.add_argument("--fail-rate", type=_share, default=0.0, help="0 to 1 (default 0)")
    sim.add_argument("--mode", choices=["async", "sync"], default="async")
    sim.add_argument("--seed", type=int, help="make failures and jitter repeatable")
    sim.add_argument("--log-level", default="warning")
    sim.set_defaults(run=cmd_supplier_sim)

    payment_sim = commands.add_parser(
        "payment-sim",
        help="run simulated WeChat Pay and Alipay (their real protocols, keys of their own, notifications with retries)",
        description="Writes the key pairs and the settings `quanyi payment-config` reads to --keys. "
        "Faults can be changed while it runs: POST /wechatpay/control, /alipay/control.",
    )
    payment_sim.add_argument("--host", default="127.0.0.1")
    payment_sim.add_argument("--port", type=int, default=8200)
    payment_sim.add_argument("--keys", default="payment-sim-keys", help="folder for the keys and payment.env")
    payment_sim.add_argument("--wechat-app-id", action="append", help="an app id WeChat Pay accepts (repeat)")
    payment_sim.add_argument("--schedule", help="seconds between notification retries, e.g. 15,15,30,180 "
                             "(WeChat Pay's own schedule is far longer; default 1,2,4,8,15,30,60)")
    payment_sim.add_argument("--log-level", default="warning")
    payment_sim.set_defaults(run=cmd_payment_sim)

    payment = commands.add_parser(
        "payment-config",
        help="set how the gateway reaches WeChat Pay or Alipay from the QUANYI_WECHATPAY_* / QUANYI_ALIPAY_* settings "
        "(keys stored sealed)",
    )
    payment.add_argument("--provider", required=True, choices=["wechatpay", "alipay"])
    payment.add_argument("--channel", help="the channel this app id serves (default: every channel without its own)")
    payment.set_defaults(run=cmd_payment_config)

    supplier = commands.add_parser(
        "supplier-config",
        help="set how the gateway reaches a supplier (the secret from QUANYI_SUPPLIER_SECRET, stored encrypted)",
    )
    supplier.add_argument("--code", required=True, help="the supplier's code, e.g. sim-fast")
    supplier.add_argument("--base-url", required=True)
    supplier.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)")
    supplier.set_defaults(run=cmd_supplier_config)

    market_sim = commands.add_parser(
        "marketplace-sim",
        help="run a simulated marketplace open platform (signed calls, trades to buy, duplicates and failures on demand)",
    )
    market_sim.add_argument("--host", default="127.0.0.1")
    market_sim.add_argument("--port", type=int, default=8300)
    market_sim.add_argument("--app-key", default="12345678")
    market_sim.add_argument("--app-secret", help="the app secret (prefer QUANYI_MARKETPLACE_SIM_SECRET)")
    market_sim.add_argument("--latency-ms", type=_milliseconds, default=0)
    market_sim.add_argument("--duplicate-rate", type=_share, default=0.0,
                            help="share of trades repeated in pull pages, 0 to 1 (default 0)")
    market_sim.add_argument("--fail-rate", type=_share, default=0.0,
                            help="share of pulls and deliveries that fail, 0 to 1 (default 0)")
    market_sim.add_argument("--failure", choices=["error", "timeout"], default="error",
                            help="how a call fails: HTTP 500, or no answer for 15 s")
    market_sim.add_argument("--push-url", help="push new trades and refunds here, e.g. "
                            "http://127.0.0.1:8000/marketplaces/taobao/push (when a trade asks for it)")
    market_sim.add_argument("--seed", type=int, help="make duplicates and failures repeatable")
    market_sim.add_argument("--log-level", default="warning")
    market_sim.set_defaults(run=cmd_marketplace_sim)

    market = commands.add_parser(
        "marketplace-config",
        help="connect a channel to its marketplace (the app secret from QUANYI_MARKETPLACE_APP_SECRET, stored encrypted)",
    )
    market.add_argument("--channel", required=True, help="the marketplace's channel, e.g. taobao")
    market.add_argument("--endpoint", required=True, help="the open platform's base URL (its router is /router/rest)")
    market.add_argument("--app-key", required=True)
    market.add_argument("--poll-seconds", type=int, default=60, help="seconds between pulls (default 60)")
    market.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    market.add_argument("--outer-id", action="append", help="OUTER_ID=SKU_CODE where the marketplace's outer id "
                        "is not our SKU code (repeat)")
    market.set_defaults(run=cmd_marketplace_config)
    return root


def run(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    try:
        sys.exit(args.run(args))
    except ValueError as error:  # configuration mistakes: say what is wrong, no traceback
        print(f"quanyi: {error}", file=sys.stderr)
        sys.exit(2)
