"""The gateway application: create_app(settings) and the `quanyi` command entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from broker import connect
from config import Settings, log_settings
from domain.access import ANONYMOUS, Principal
from domain.admission import parse_allowances
from models import Supplier
from resolvers import build_schema
from resolvers.loaders import Loaders
from schema.context import Context
from schema.errors import Unauthenticated
from schema.live import StockChange
from schema.sales import SaleEventUpdate
from services.access.authenticator import Authenticator
from services.access.budgets import connect_budgets
from services.access.tokens import AccessTokens
from services.analytics.alerting import run_alert_robots
from services.analytics.buyer_refresh import run_profiles
from services.analytics.buyers import profile_secret
from services.analytics.robots import DingTalkRobot, Robot, WeComRobot
from services.core import collector, logs, telemetry
from services.core.database import Database
from services.core.log_privacy import install_contact_masking
from services.core.secret_box import SecretBox
from services.lotteries.jobs import LotteryDraws
from services.core.worker import Worker
from services.marketplace_events.connected import CONNECTED
from services.marketplaces.connections import Factory as MarketFactory
from services.marketplaces.connections import Markets
from services.marketplaces.import_retry import ImportRetry
from services.marketplaces.imports import Importer
from services.marketplaces.pull import Puller
from services.marketplaces.refund_decisions import DecisionReporter
from services.marketplaces.refunds import RefundDesk
from services.marketplaces.reports import Reporter
from services.memberships.desk import Memberships
from services.memberships.renewals import Renewals
from services.webhooks.audience import AUDIENCES
from services.webhooks.dispatch import Dispatcher
from services.webhooks.receivers import HttpReceiver
from services.documents.persisted import connect_persisted_queries
from services.documents.trusted import TrustedDocuments
from services.demo import marketplace as demo_marketplace
from services.demo import suppliers as demo_suppliers
from services.fulfilment import connections
from services.fulfilment.fulfil import Fulfilment
from services.fulfilment.aliyun_sms import AliyunSmsSender
from services.fulfilment.senders import EmailSender, InboxSender, Sender, SmsSender
from services.fulfilment.supplier_health import SupplierHealth
from services.fulfilment.supplier_registry import Factory, SupplierRegistry
from services.fulfilment.topups import TopUps
from services.live.stock_feed import StockFeed
from services.inventory.placed_keys import connect_placed_keys
from services.inventory.sold_out import SoldOutGate
from services.live.sale_feed import SaleFeed
from services.orders.expiry import run_expiry
from services.catalog.reference import Reference
from services.orders.terms import Terms
from services.demo import payments as demo_payments
from services.payments.accounts import PaymentAccounts
from services.payments.accounts import Factory as PaymentFactory
from services.payments.provider_refunds import ProviderRefunds
from services.risk.check import ModelBook, RiskCheck, RuleBook
from services.risk.counters import connect_counters
from services.sales.book import SaleBook
from services.sales.warm import SaleWarmer
from providers.alipay import Alipay
from providers.base import Account, Provider
from providers.recurring_sim import RecurringSim, sim_key
from providers.wechatpay import WechatPay
from suppliers.base import SupplierAdapter
from suppliers.http import HttpSupplier
from transport import tracing
from transport.auth import bearer
from transport.client_ip import client_ip, parse_networks
from transport.dashboard import dashboard_routes
from transport.exchange import ObservedAdmission, note_caller
from transport.graphiql import GraphiQL
from transport.catalog_run import CatalogRun
from transport.graphql_http import GraphQLEndpoint
from transport.graphql_post import GraphQLPost
from transport.health import healthz, readyz
from transport.metrics import (
    MeasuredResponseCache,
    MetricsEndpoint,
    MetricsListener,
    process_ending,
)
from transport.observe import Observe
from transport.persisted import PersistedDocuments
from transport.settlement import SettlementFiles
from transport.shutdown import Draining
from transport.sockets import OpenSockets
from transport.marketplace_push import MarketplacePush
from transport.supplier_webhook import SupplierWebhook
from transport.provider_webhooks import ProviderWebhook
from transport.webhooks import PaymentWebhook
from transport.outlets import SocketSend
from transport.websocket import GraphQLWebSocket

log = logging.getLogger("quanyi")


def _http_supplier(row: Supplier, secret: str) -> SupplierAdapter | None:
    if not row.base_url:
        return None  # not configured: the supplier is skipped
    return HttpSupplier(row.code, row.base_url, secret, timeout_seconds=row.timeout_seconds)


SUPPLIER_ADAPTERS: dict[str, Factory] = {"http": _http_supplier}


def payment_factories(transport: httpx.AsyncBaseTransport | None = None) -> dict[Provider, PaymentFactory]:
    """`transport`: how the adapters reach the providers (tests: the app itself)."""
    def wechatpay(account: Account) -> WechatPay:
        return WechatPay(account, transport=transport)

    def alipay(account: Account) -> Alipay:
        return Alipay(account, transport=transport)

    return {Provider.WECHAT_PAY: wechatpay, Provider.ALIPAY: alipay}


def robots_of(settings: Settings) -> list[Robot]:
    """The chat-group robots operator alerts go to, when configured."""
    robots: list[Robot] = []
    if settings.wecom_robot_url:
        robots.append(WeComRobot(settings.wecom_robot_url))
    if settings.dingtalk_robot_url:
        robots.append(DingTalkRobot(settings.dingtalk_robot_url, settings.dingtalk_robot_secret))
    return robots


def senders_of(settings: Settings) -> list[Sender]:
    """The inbox always; SMS and email only when configured."""
    senders: list[Sender] = [InboxSender()]
    if settings.aliyun_sms_key_id:
        senders.append(AliyunSmsSender(
            key_id=settings.aliyun_sms_key_id, secret=settings.aliyun_sms_secret,
            sign_name=settings.aliyun_sms_sign_name, template_code=settings.aliyun_sms_template,
            endpoint=settings.aliyun_sms_endpoint,
        ))
    elif settings.sms_url:
        senders.append(SmsSender(settings.sms_url, settings.sms_token))
    if settings.smtp_host:
        senders.append(EmailSender(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                   username=settings.smtp_username, password=settings.smtp_password,
                                   starttls=settings.smtp_starttls))
    return senders


def create_app(
    settings: Settings | None = None, *, supplier_adapters: Mapping[str, Factory] | None = None,
    span_exporter: object | None = None, payment_transport: httpx.AsyncBaseTransport | None = None,
    memberships: Memberships | None = None, marketplace_adapters: Mapping[str, MarketFactory] | None = None,
) -> Starlette:
    """`span_exporter`: trace into it (tests), as if tracing were configured. `payment_transport`:
    how payment adapters and simulated providers reach HTTP (tests: the app itself).
    `memberships`: the recurring payment provider and the clock of renewals (tests: a
    simulator and a clock they move); by default the simulator where payments are simulated.
    `marketplace_adapters`: how each kind of marketplace connection is reached (tests: a simulator in process)."""
    if settings is None:
        logs.configure(*log_settings(os.environ))  # first: reading the settings may warn
        settings = Settings.from_env()
    elif settings.log_format is not None:
        logs.configure(settings.log_format, settings.log_level)
    install_contact_masking()  # no buyer's phone or e-mail in any log line of the process
    if not settings.payment_webhook_secret:
        log.warning("QUANYI_PAYMENT_WEBHOOK_SECRET is not set: POST /webhooks/payment answers 503.")
    db = Database.connect(settings)
    for name, engine in db.engines().items():
        telemetry.watch_pool(engine, "read" if name == "reads" else name)
    broker = connect(settings.redis_url, prefix=settings.broker_prefix, on_delivery=telemetry.broker_delivered)
    box = SecretBox(settings.secret_key, settings.old_secret_keys)
    suppliers = SupplierRegistry(db, box, SUPPLIER_ADAPTERS if supplier_adapters is None else supplier_adapters)
    senders = senders_of(settings)
    payments = PaymentAccounts(db, box, payment_factories(payment_transport))
    demo_providers = demo_payments.simulators(payment_transport) if settings.payment_sim else None
    supplier_health = SupplierHealth(hold=settings.supplier_outage_hold_seconds)
    fulfilment = Fulfilment(
        db, broker, TopUps(
            db, suppliers, settings.public_url, lambda: datetime.now(UTC),
            supplier_health,
            connection_wait=timedelta(seconds=settings.topup_connection_wait_seconds),
        ), senders, box,
        ProviderRefunds(db, payments, settings.public_url), refund_check_seconds=settings.refund_check_seconds,
    )
    demo_secret = demo_suppliers.demo_secret(settings.secret_key) if settings.demo else ""
    demo_sims = demo_suppliers.simulators(demo_secret) if settings.demo else {}
    sales = SaleBook(broker)
    # Counters shared by every process through Redis when there is one, else this process's own.
    risk = RiskCheck(
        RuleBook(broker), connect_counters(settings.redis_url, prefix=settings.broker_prefix), ModelBook(broker)
    )
    # What every order reads (channels, SKUs, prices, limits), kept per process; and the
    # sold-out gate that answers a SKU's late buyers without the database.
    terms = Terms()
    # What catalog pages read besides the page and its stock (channels, brands, SKUs, prices).
    reference = Reference()
    gate = SoldOutGate(broker, connect_placed_keys(settings.redis_url, prefix=settings.broker_prefix))
    warmer = SaleWarmer(db, broker, sales, risk, terms)
    if memberships is None:
        memberships = Memberships(RecurringSim(sim_key(settings.secret_key)) if settings.payment_sim else None)
    renewals = Renewals(db, broker, memberships.provider, senders, memberships.clock,
                        timedelta(seconds=settings.order_ttl_seconds))
    worker = Worker(
        db, broker, {**fulfilment.handlers(), **warmer.handlers(), **renewals.handlers(), **LotteryDraws(box).handlers()},
        concurrency=settings.worker_concurrency,
        poll_interval=settings.worker_poll_seconds, lease_seconds=settings.worker_lease_seconds,
    )
    # Webhook receivers get a worker of their own: a slow one never takes the slots that fulfil orders.
    dispatcher = Dispatcher(box, HttpReceiver(allow_private=settings.webhook_allow_private),
                            disable_after=timedelta(seconds=settings.webhook_disable_after_seconds))
    webhook_worker = Worker(
        db, broker, dispatcher.handlers(), concurrency=settings.webhook_concurrency,
        poll_interval=settings.worker_poll_seconds, lease_seconds=settings.worker_lease_seconds,
    )
    # Marketplaces: pulls and delivery reports on a worker of their own, like webhooks.
    markets = Markets(db, box, marketplace_adapters)
    importer = Importer(db, broker, on_event=lambda topic, message: on_event(topic, message))
    import_retry = ImportRetry(db, markets, importer)
    refund_desk = RefundDesk(db, broker, on_event=lambda topic, message: on_event(topic, message))
    market_worker = Worker(
        db, broker, {**Puller(markets, importer, refund_desk).handlers(), **Reporter(markets, box).handlers(),
                     **DecisionReporter(markets).handlers()},
        concurrency=settings.marketplace_concurrency, poll_interval=settings.worker_poll_seconds,
        lease_seconds=settings.worker_lease_seconds,
    )
    demo_market_secret = demo_marketplace.demo_secret(settings.secret_key) if settings.demo else ""
    demo_market = (demo_marketplace.simulator(demo_market_secret, settings.public_url or "http://127.0.0.1:8000")
                   if settings.demo else None)
    cache = MeasuredResponseCache(settings.response_cache_seconds) if settings.response_cache else None
    authenticator = Authenticator(db, broker, AccessTokens(settings.secret_key, settings.old_secret_keys), ttl_seconds=settings.key_cache_seconds)
    trusted = TrustedDocuments(db, broker)
    persisted = PersistedDocuments(
        connect_persisted_queries(settings.redis_url, prefix=settings.broker_prefix, size=settings.persisted_queries,
                                  max_bytes=settings.persisted_query_max_bytes),
        trusted, settings.trusted_documents,
    )
    sockets = OpenSockets(authenticator, per_address=settings.ws_connections_per_ip, interval=settings.key_recheck_seconds)
    stock_feed = StockFeed(db, broker, StockChange.from_stock)
    sale_feed = SaleFeed(db, sales, SaleEventUpdate.of)
    proxies = parse_networks(settings.trusted_proxies)
    schema = build_schema(federation=settings.federation)
    budgets = connect_budgets(settings.redis_url, prefix=settings.broker_prefix) if settings.rate_limits else None
    admission = ObservedAdmission(
        schema._schema, budgets, max_cost=settings.limits.max_query_cost, default_page_size=20,
        max_page_size=settings.limits.max_page_size, allowances=parse_allowances(settings.budgets),
    )

    def on_event(topic: str, message: bytes) -> None:
        # This process's own changes reach its caches before they go out on the broker.
        if db.replica is not None:
            db.replica.on_event(topic, message)  # first: what refills the caches reads the primary
        if cache is not None:
            cache.on_event(topic, message)
        suppliers.on_event(topic)
        trusted.on_event(topic)
        terms.on_event(topic, message)
        reference.on_event(topic, message)
        gate.on_event(topic, message)
        sales.on_event(topic)

    async def principal_of(headers: Mapping[str, str]) -> Principal:
        credential = bearer(headers.get("authorization"))
        if credential is None:
            note_caller(ANONYMOUS)
            return ANONYMOUS
        principal = await authenticator.principal(credential)
        if principal is None:
            raise Unauthenticated("unknown or revoked key")
        note_caller(principal)
        return principal

    def context(principal: Principal, request_id: str) -> Context:
        now = datetime.now(UTC)
        loaders = Loaders.create(db, now)
        return Context(
            settings, db, broker, authenticator, loaders, principal, request_id, now,
            on_event=on_event, stock_feed=stock_feed,
            new_loaders=Loaders.create, risk=risk, senders=senders,
            supplier_problem=suppliers.problem,
            terms=terms, gate=gate,
            sales=sales, sale_feed=sale_feed, payments=payments, memberships=memberships, seeds=box,
            marketplace_imports=import_retry,
        )

    async def http_principal(request: Request) -> Principal:
        return await principal_of(request.headers)

    def http_client_ip(request: Request) -> str | None:
        return client_ip(request.client.host if request.client else None, request.headers, proxies)

    def http_context(request: Request, principal: Principal, request_id: str) -> Context:
        built = context(principal, request_id)
        built.client_ip = http_client_ip(request)
        built.device_id = (request.headers.get("x-device-id") or "").strip()[:128] or None
        return built

    def ws_client_ip(websocket: WebSocket) -> str | None:
        return client_ip(websocket.client.host if websocket.client else None, websocket.headers, proxies)

    async def ws_context(websocket: WebSocket) -> Context:
        built = context(await principal_of(websocket.headers), f"ws-{uuid.uuid4().hex}")
        built.client_ip = ws_client_ip(websocket)
        return built

    traces: tracing.Tracing | None = None
    metrics = MetricsEndpoint(principal_of, db, suppliers)
    websockets = GraphQLWebSocket(schema, ws_context, admission, sockets, ws_client_ip, persisted)
    draining = Draining(settings.shutdown_grace_seconds)
    draining.on_drain(websockets.going_away)

    async def stop_claiming() -> None:
        worker.stop_claiming()
        webhook_worker.stop_claiming()
        market_worker.stop_claiming()

    draining.on_drain(stop_claiming)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        draining.install(asyncio.get_running_loop())
        await broker.start()
        metrics_apart = MetricsListener(metrics, asyncio.get_running_loop())
        if settings.metrics_address:
            metrics_apart.start(settings.metrics_address)
        demo_stack = contextlib.AsyncExitStack()
        if demo_sims:
            await demo_stack.enter_async_context(demo_suppliers.running(
                demo_sims, db, box, demo_secret,
                settings.public_url or "http://127.0.0.1:8000",
            ))
        if demo_providers is not None:
            await demo_stack.enter_async_context(demo_payments.running(
                demo_providers, db, box, settings.public_url or "http://127.0.0.1:8000",
            ))
            payments.forget()
        if demo_market is not None:
            await demo_stack.enter_async_context(demo_marketplace.running(
                demo_market, db, broker, box, demo_market_secret, settings.public_url or "http://127.0.0.1:8000",
            ))
        await _say_which_skus_cannot_deliver(db, suppliers)
        followers = [
            asyncio.create_task(authenticator.follow(), name="key-revocations"),
            asyncio.create_task(sockets.watch(), name="socket-keys"),
            asyncio.create_task(trusted.follow(), name="trusted-documents"),
            asyncio.create_task(risk.book.follow(), name="risk-rule-changes"),
            asyncio.create_task(risk.models.follow(), name="risk-model-changes"),
            asyncio.create_task(suppliers.follow(broker), name="supplier-changes"),
            asyncio.create_task(run_expiry(db, broker, settings.expiry_interval_seconds), name="order-expiry"),
            *([asyncio.create_task(run_alert_robots(db, robots_of(settings), settings.alert_robot_seconds),
                                   name="alert-robots")] if robots_of(settings) else []),
            asyncio.create_task(run_profiles(
                db, profile_secret(settings.secret_key), interval=settings.buyer_profile_seconds,
                retention_days=settings.buyer_contact_retention_days,
            ), name="buyer-profiles"),
            asyncio.create_task(terms.follow(broker), name="order-terms"),
            asyncio.create_task(reference.follow(broker), name="catalog-reference"),
            asyncio.create_task(gate.follow_stock(), name="sold-out-gate-stock"),
            asyncio.create_task(gate.follow_sold_out(), name="sold-out-gate-notices"),
            asyncio.create_task(sales.follow(), name="sale-changes"),
            asyncio.create_task(warmer.follow(), name="sale-warm-ups"),
            asyncio.create_task(AUDIENCES.follow(broker), name="webhook-endpoints"),
            asyncio.create_task(CONNECTED.follow(broker, db), name="marketplace-connections"),
        ]
        if db.replica is not None:
            followers.append(asyncio.create_task(db.replica.watch(), name="read-replica"))
            followers.append(asyncio.create_task(db.replica.follow(broker), name="read-replica-changes"))
        if cache is not None:
            followers.append(asyncio.create_task(cache.follow(broker), name="catalog-changes"))
        if settings.worker:
            followers.append(asyncio.create_task(worker.run(), name="jobs"))
            followers.append(asyncio.create_task(webhook_worker.run(), name="webhooks"))
            followers.append(asyncio.create_task(market_worker.run(), name="marketplaces"))
        if settings.collector_tuning:
            collector.settle()
        try:
            yield
        finally:
            # Job runs get what is left of the grace period; the ones still running give back their jobs.
            await worker.shutdown(draining.remaining())
            await webhook_worker.shutdown(draining.remaining())
            await market_worker.shutdown(draining.remaining())
            draining.uninstall()
            metrics_apart.close()
            for follower in followers:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            if cache is not None:
                await cache.close()
            await stock_feed.close()
            await sale_feed.close()
            await warmer.close()
            await risk.counters.close()
            await gate.placed.close()
            if budgets is not None:
                await budgets.close()
            await persisted.close()
            await suppliers.close()
            await dispatcher.close()
            await markets.close()
            await payments.close()
            await demo_stack.aclose()
            await broker.close()
            await db.dispose()
            if traces is not None:
                traces.close()
            process_ending()

    graphiql = GraphiQL(settings.graphiql)
    catalog = (
        CatalogRun(schema._schema, db, reference, max_page_size=settings.limits.max_page_size)
        if settings.catalog_plans else None
    )
    endpoint = GraphQLEndpoint(
        schema, settings, http_principal, http_context, admission, http_client_ip, cache, graphiql, persisted,
        catalog,
    )
    payment_webhook = PaymentWebhook(settings, db, broker, cache.on_event if cache is not None else None)
    routes: list[BaseRoute] = [
        Route("/graphql", endpoint.handle, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        WebSocketRoute("/graphql", websockets),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics.handle),
        Route("/webhooks/payment", payment_webhook.handle, methods=["POST"]),
        Route("/webhooks/wechatpay", ProviderWebhook(Provider.WECHAT_PAY, payments, db, broker, on_event).handle,
              methods=["POST"]),
        Route("/webhooks/alipay", ProviderWebhook(Provider.ALIPAY, payments, db, broker, on_event).handle,
              methods=["POST"]),
        Route("/webhooks/supplier/{code}", SupplierWebhook(db, broker, suppliers).handle, methods=["POST"]),
        Route("/marketplaces/{channel}/push", MarketplacePush(db, markets, importer, refund_desk).handle,
              methods=["POST"]),
    ]
    routes += SettlementFiles(db, broker, principal_of).routes()
    routes += dashboard_routes()
    routes += graphiql.routes()
    routes += demo_suppliers.mounts(demo_sims)
    routes += demo_marketplace.mounts(demo_market)
    if demo_providers is not None:
        routes += demo_providers.mounts()
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[
        Middleware(SocketSend), Middleware(Observe), Middleware(GraphQLPost, handle=endpoint.handle),
    ])
    if settings.otel or span_exporter is not None:
        traces = tracing.install(app, list(db.engines().values()), exporter=span_exporter)
        if db.driver is not None:
            db.driver.enabled = False  # its statements would be missing from the traces
    app.state.settings = settings
    app.state.db = db
    app.state.broker = broker
    app.state.risk = risk
    app.state.terms = terms
    app.state.catalog_reference = reference
    app.state.gate = gate
    app.state.sales = sales
    app.state.sale_warmer = warmer
    app.state.response_cache = cache
    app.state.worker = worker
    app.state.webhook_worker = webhook_worker
    app.state.webhook_dispatcher = dispatcher
    app.state.market_worker = market_worker
    app.state.markets = markets
    app.state.demo_marketplace = demo_market
    app.state.draining = draining
    app.state.suppliers = suppliers
    app.state.payments = payments
    app.state.memberships = memberships
    app.state.renewals = renewals
    app.state.demo_providers = demo_providers
    app.state.supplier_health = supplier_health
    app.state.sockets = sockets
    app.state.authenticator = authenticator
    app.state.trusted_documents = trusted
    app.state.compiled_mutations = endpoint.mutations
    return app


async def _say_which_skus_cannot_deliver(db: Database, suppliers: SupplierRegistry) -> None:
    """At start-up, a warning for each top-up SKU on sale none of whose suppliers can be reached."""
    try:
        async with db.fresh_sessions() as session:
            found = await connections.check(session, suppliers)
    except Exception as error:  # noqa: BLE001 - /readyz says whether the database answers
        log.warning("could not check the suppliers' connections: %s", type(error).__name__)
        return
    for stranded in found.stranded:
        log.warning("%s; its paid top-ups wait for one (see `suppliers` and /readyz)", connections.describe(stranded))


def main() -> None:
    from cli import run

    run()
