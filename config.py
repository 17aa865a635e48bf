"""Settings read once from the environment; the embedded defaults need nothing set."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url

log = logging.getLogger("quanyi.config")

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./quanyi.db"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _stock_slots(env: dict[str, str]) -> int:
    value = _int(env, "QUANYI_STOCK_SLOTS", Settings.stock_slots)
    if not 1 <= value <= 64:
        raise ValueError(f"QUANYI_STOCK_SLOTS must be from 1 to 64, got {value}")
    return value


def _days(env: dict[str, str], name: str) -> int:
    value = _int(env, name, 0)
    if not 0 <= value <= 36_500:
        raise ValueError(f"{name} must be a number of days from 0 (keep) to 36500, got {value}")
    return value


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not 0 < value <= 3600:
        raise ValueError(f"{name} must be more than 0 and at most 3600 seconds, got {raw!r}")
    return value


def _mode(raw: str | None) -> str:
    mode = (raw or "off").strip().lower()
    if mode not in ("off", "log", "enforce"):
        raise ValueError(f"QUANYI_TRUSTED_DOCUMENTS must be off, log or enforce, got {raw!r}")
    return mode


@dataclass(frozen=True)
class Limits:
    """Protection applied to every GraphQL document before it runs."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2_000
    max_body_bytes: int = 256 * 1024
    max_page_size: int = 100
    document_cache_size: int = 512
    max_query_cost: int = 1000  # one request's requested cost (transport/cost.py), at most


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    database_read_url: str | None = None
    # The most a catalog or listing read on the replica may lag the primary (services/core/replica.py).
    read_max_lag_seconds: float = 5.0
    redis_url: str | None = None
    secret_key: bytes = field(default=b"", repr=False)
    # Keys rotated out: they still open what they sealed until `quanyi reseal-secrets` is done.
    old_secret_keys: tuple[bytes, ...] = field(default=(), repr=False)
    debug: bool = False
    graphiql: bool = False
    # Introspection and "Did you mean …" for every caller; off: for partner and operator keys only.
    # From the environment: QUANYI_PUBLIC_INTROSPECTION, else on when debugging or demonstrating.
    public_introspection: bool = False
    demo: bool = False
    limits: Limits = field(default_factory=Limits)
    response_cache: bool = True
    # Freeze what start-up built and collect young objects less often (services/core/collector.py).
    # On for served processes (from_env); off where the gateway runs inside another program (tests).
    collector_tuning: bool = False
    # No cached answer is served longer than this after its computation began: the bound on
    # how far behind the database the stock it shows may be (orders do not drop the cache).
    response_cache_seconds: float = 1.0
    # Catalog reads answered from execution plans (transport/catalog_plan.py); off: graphql-core runs them.
    catalog_plans: bool = True
    compiled_mutations: bool = True  # placeOrder past graphql-core's executor (transport/compiled_mutation.py)
    # Per-caller budgets of query cost (leaky buckets). Off only for benchmarks and load tests.
    rate_limits: bool = True
    # Budgets per role, e.g. "anonymous=1000/50,partner=2000/100" (maximum/restore a second);
    # empty: the defaults of domain/admission.py. A key's own budget overrides its role's.
    budgets: str = ""
    broker_prefix: str = "quanyi:"
    order_ttl_seconds: int = 900
    expiry_interval_seconds: float = 1.0
    # Slots a top-up SKU's counter stock, and a channel's quota, is spread over when it is set
    # (domain/slots.py); 1: one row.
    stock_slots: int = 8
    # Buyer profiles: recomputed this often; contacts of settled orders erased after this many days (0: kept).
    # Operator alerts to chat groups (WeCom / DingTalk group robots), checked this often.
    wecom_robot_url: str | None = field(default=None, repr=False)
    dingtalk_robot_url: str | None = field(default=None, repr=False)
    dingtalk_robot_secret: str = field(default="", repr=False)
    alert_robot_seconds: float = 30.0
    federation: bool = False  # serve the schema as an Apollo Federation v2 subgraph
    buyer_profile_seconds: float = 300.0
    buyer_contact_retention_days: int = 0
    # Empty: the payment webhook answers 503 (no secret configured, nothing can be verified).
    payment_webhook_secret: bytes = field(default=b"", repr=False)
    payment_webhook_tolerance_seconds: int = 300
    # Proxies whose X-Forwarded-For is believed (IPs or CIDRs); empty: the peer is the client.
    trusted_proxies: str = ""
    # How long a verified key is trusted without asking the database again, and how often the
    # keys of open WebSockets (and cached ones) are rechecked: a revocation whose broker
    # announcement was lost still takes effect within these bounds.
    key_cache_seconds: float = 5.0
    key_recheck_seconds: float = 1.0
    # Open WebSocket connections one client address may hold in one process; 0: no cap.
    ws_connections_per_ip: int = 100
    # Automatic persisted queries: documents kept (least recently used leave first; in Redis
    # when configured, else per process) and the size of the largest one kept.
    persisted_queries: int = 5_000
    persisted_query_max_bytes: int = 32 * 1024
    # Trusted documents: "off", "log" (untrusted ones run and are logged and counted) or
    # "enforce" (only documents registered for everyone or for the caller's key run).
    trusted_documents: str = "off"
    # An order the risk check holds for review expires, releasing its stock, after this long.
    review_ttl_seconds: int = 24 * 3600
    # Units one buyer from the public (phone, e-mail, device, account) may hold in unpaid
    # orders at once, and units one client address may; 0: no cap. A channel may set its own.
    hold_limit: int = 5
    hold_limit_per_ip: int = 20
    # Buyers one client address from the public may register for one sale (预约); 0: no cap.
    sale_registrations_per_address: int = 20
    # How long before a sale's start every process warms for it (services/sales/warm.py).
    sale_warm_seconds: float = 5.0
    # Fulfilment jobs run in the gateway process. Off unless asked for when Settings are
    # built in code (tests, tools); on by default from the environment (QUANYI_WORKER).
    worker: bool = False
    worker_concurrency: int = 8
    worker_poll_seconds: float = 1.0
    # A job whose worker stops answering for this long is claimed by another worker.
    worker_lease_seconds: float = 60.0
    # Asked to stop (SIGTERM), the process lets requests and job runs under way finish for at
    # most this long; jobs still running are then given back to other workers.
    shutdown_grace_seconds: float = 20.0
    # A supplier failing everything holds its top-ups back for at most this long (no refund
    # storm during a short outage); after it they fail over and are refunded as usual.
    supplier_outage_hold_seconds: float = 600.0
    # Outbound webhooks: loopback and private receivers are refused unless this is on (tests,
    # demos); receivers are sent to by a worker of their own with this many slots per process;
    # an endpoint failing every attempt for this long is disabled.
    webhook_allow_private: bool = False
    webhook_concurrency: int = 16
    marketplace_concurrency: int = 4  # marketplace pulls and delivery reports run at once, per process
    webhook_disable_after_seconds: float = 86400.0
    # A paid top-up none of whose suppliers has a usable connection waits this long for an
    # operator to connect one before it is refused and refunded.
    topup_connection_wait_seconds: int = 900
    # How suppliers reach our callback endpoint: https://gateway.example.com
    public_url: str | None = None
    # Simulated WeChat Pay and Alipay in the process, the payment accounts pointed at them
    # (services/demo/payments.py): QUANYI_PAYMENT_SIM=1, on with --demo.
    payment_sim: bool = False
    # A refund the provider is still processing is asked about again this often, in case
    # its refund notification never comes.
    refund_check_seconds: float = 600.0
    # SMS gateway (HTTP JSON API with a bearer token) and SMTP relay; unset: not used.
    sms_url: str | None = None
    sms_token: str = field(default="", repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str = "orders@quanyi.local"
    smtp_username: str | None = None
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = True
    # Aliyun SMS (阿里云短信): codes by SMS through an approved sign name and template.
    aliyun_sms_key_id: str | None = None
    aliyun_sms_secret: str = field(default="", repr=False)
    aliyun_sms_sign_name: str = ""
    aliyun_sms_template: str = ""
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    # How the process logs: "json" (one object a line) or "text". None, when Settings are built
    # in code (tests, tools), leaves logging as it is; from the environment (QUANYI_LOG_FORMAT)
    # it is json unless QUANYI_DEBUG or QUANYI_DEMO is on.
    log_format: str | None = None
    log_level: str = "INFO"
    # OpenTelemetry traces (transport/tracing.py): QUANYI_OTEL=1 or OTEL_EXPORTER_OTLP_ENDPOINT.
    otel: bool = False
    # "host:port" serving /metrics without a key, for a network only Prometheus reaches; unset:
    # /metrics on the gateway's own address, for an admin key.
    metrics_address: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        database_url = env.get("QUANYI_DATABASE_URL") or DEFAULT_DATABASE_URL
        debug = _flag(env.get("QUANYI_DEBUG"))
        limits = Limits(
            max_depth=_int(env, "QUANYI_MAX_DEPTH", Limits.max_depth),
            max_aliases=_int(env, "QUANYI_MAX_ALIASES", Limits.max_aliases),
            max_tokens=_int(env, "QUANYI_MAX_TOKENS", Limits.max_tokens),
            max_body_bytes=_int(env, "QUANYI_MAX_BODY_BYTES", Limits.max_body_bytes),
            max_query_cost=_int(env, "QUANYI_MAX_QUERY_COST", Limits.max_query_cost),
        )
        secret_key = _secret_key(env.get("QUANYI_SECRET_KEY"), database_url)
        return cls(
            database_url=database_url,
            database_read_url=env.get("QUANYI_DATABASE_READ_URL") or None,
            read_max_lag_seconds=_seconds(env, "QUANYI_READ_MAX_LAG_SECONDS", 5.0),
            redis_url=env.get("QUANYI_REDIS_URL") or None,
            secret_key=secret_key,
            old_secret_keys=_old_secret_keys(env.get("QUANYI_SECRET_KEYS_OLD")),
            debug=debug,
            graphiql=_graphiql(env.get("QUANYI_GRAPHIQL"), debug),
            demo=_flag(env.get("QUANYI_DEMO")),
            # GraphiQL reads the schema as its anonymous visitor does: turning it on opens introspection.
            public_introspection=_flag(env["QUANYI_PUBLIC_INTROSPECTION"]) if env.get("QUANYI_PUBLIC_INTROSPECTION")
            else debug or _flag(env.get("QUANYI_DEMO")) or _graphiql(env.get("QUANYI_GRAPHIQL"), debug),
            limits=limits,
            response_cache=env.get("QUANYI_RESPONSE_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"},
            response_cache_seconds=float(env.get("QUANYI_RESPONSE_CACHE_SECONDS") or 1.0),
            catalog_plans=env.get("QUANYI_CATALOG_PLANS", "1").strip().lower() not in {"0", "false", "no", "off"},
            compiled_mutations=env.get("QUANYI_COMPILED_MUTATIONS", "1").strip().lower() not in {"0", "false", "no", "off"},
            rate_limits=env.get("QUANYI_RATE_LIMITS", "1").strip().lower() not in {"0", "false", "no", "off"},
            collector_tuning=env.get("QUANYI_COLLECTOR_TUNING", "1").strip().lower() not in {"0", "false", "no", "off"},
            budgets=env.get("QUANYI_BUDGETS", ""),
            order_ttl_seconds=_int(env, "QUANYI_ORDER_TTL_SECONDS", 900),
            stock_slots=_stock_slots(env),
            expiry_interval_seconds=float(env.get("QUANYI_EXPIRY_INTERVAL_SECONDS") or 1.0),
            wecom_robot_url=env.get("QUANYI_WECOM_ROBOT_URL") or None,
            dingtalk_robot_url=env.get("QUANYI_DINGTALK_ROBOT_URL") or None,
            dingtalk_robot_secret=env.get("QUANYI_DINGTALK_ROBOT_SECRET") or "",
            alert_robot_seconds=_seconds(env, "QUANYI_ALERT_ROBOT_SECONDS", 30.0),
            federation=_flag(env.get("QUANYI_FEDERATION")),
            buyer_profile_seconds=_seconds(env, "QUANYI_BUYER_PROFILE_SECONDS", 300.0),
            buyer_contact_retention_days=_days(env, "QUANYI_BUYER_CONTACT_RETENTION_DAYS"),
            broker_prefix=env.get("QUANYI_BROKER_PREFIX") or "quanyi:",
            payment_webhook_secret=_payment_webhook_secret(
                env.get("QUANYI_PAYMENT_WEBHOOK_SECRET"), secret_key, database_url
            ),
            payment_webhook_tolerance_seconds=_int(env, "QUANYI_PAYMENT_WEBHOOK_TOLERANCE_SECONDS", 300),
            trusted_proxies=env.get("QUANYI_TRUSTED_PROXIES", ""),
            key_cache_seconds=_seconds(env, "QUANYI_KEY_CACHE_SECONDS", 5.0),
            key_recheck_seconds=_seconds(env, "QUANYI_KEY_RECHECK_SECONDS", 1.0),
            ws_connections_per_ip=_int(env, "QUANYI_WS_CONNECTIONS_PER_IP", 100),
            persisted_queries=_int(env, "QUANYI_PERSISTED_QUERIES", 5_000),
            persisted_query_max_bytes=_int(env, "QUANYI_PERSISTED_QUERY_MAX_BYTES", 32 * 1024),
            trusted_documents=_mode(env.get("QUANYI_TRUSTED_DOCUMENTS")),
            review_ttl_seconds=_int(env, "QUANYI_REVIEW_TTL_SECONDS", 24 * 3600),
            hold_limit=_int(env, "QUANYI_HOLD_LIMIT", 5),
            hold_limit_per_ip=_int(env, "QUANYI_HOLD_LIMIT_PER_IP", 20),
            sale_registrations_per_address=_int(env, "QUANYI_SALE_REGISTRATIONS_PER_ADDRESS", 20),
            sale_warm_seconds=float(env.get("QUANYI_SALE_WARM_SECONDS") or 5.0),
            worker=env.get("QUANYI_WORKER", "1").strip().lower() not in {"0", "false", "no", "off"},
            worker_concurrency=_int(env, "QUANYI_WORKER_CONCURRENCY", 8),
            worker_poll_seconds=float(env.get("QUANYI_WORKER_POLL_SECONDS") or 1.0),
            worker_lease_seconds=float(env.get("QUANYI_WORKER_LEASE_SECONDS") or 60.0),
            shutdown_grace_seconds=float(env.get("QUANYI_SHUTDOWN_GRACE_SECONDS") or 20.0),
            supplier_outage_hold_seconds=float(env.get("QUANYI_SUPPLIER_OUTAGE_HOLD_SECONDS") or 600.0),
            webhook_allow_private=_flag(env.get("QUANYI_WEBHOOK_ALLOW_PRIVATE")),
            webhook_concurrency=_int(env, "QUANYI_WEBHOOK_CONCURRENCY", 16),
            marketplace_concurrency=_int(env, "QUANYI_MARKETPLACE_CONCURRENCY", 4),
            webhook_disable_after_seconds=float(env.get("QUANYI_WEBHOOK_DISABLE_AFTER_SECONDS") or 86400.0),
            public_url=env.get("QUANYI_PUBLIC_URL") or None,
            payment_sim=_flag(env.get("QUANYI_PAYMENT_SIM")) or _flag(env.get("QUANYI_DEMO")),
            refund_check_seconds=_seconds(env, "QUANYI_REFUND_CHECK_SECONDS", 600.0),
            topup_connection_wait_seconds=_int(env, "QUANYI_TOPUP_CONNECTION_WAIT_SECONDS", 900),
            sms_url=env.get("QUANYI_SMS_URL") or None,
            sms_token=env.get("QUANYI_SMS_TOKEN") or "",
            smtp_host=env.get("QUANYI_SMTP_HOST") or None,
            smtp_port=_int(env, "QUANYI_SMTP_PORT", 587),
            smtp_from=env.get("QUANYI_SMTP_FROM") or "orders@quanyi.local",
            smtp_username=env.get("QUANYI_SMTP_USERNAME") or None,
            smtp_password=env.get("QUANYI_SMTP_PASSWORD") or "",
            smtp_starttls=env.get("QUANYI_SMTP_STARTTLS", "1").strip().lower() not in {"0", "false", "no", "off"},
            aliyun_sms_key_id=env.get("QUANYI_ALIYUN_SMS_ACCESS_KEY_ID") or None,
            aliyun_sms_secret=env.get("QUANYI_ALIYUN_SMS_ACCESS_KEY_SECRET") or "",
            aliyun_sms_sign_name=env.get("QUANYI_ALIYUN_SMS_SIGN_NAME") or "",
            aliyun_sms_template=env.get("QUANYI_ALIYUN_SMS_TEMPLATE_CODE") or "",
            aliyun_sms_endpoint=env.get("QUANYI_ALIYUN_SMS_ENDPOINT") or "https://dysmsapi.aliyuncs.com/",
            log_format=log_settings(env)[0],
            log_level=log_settings(env)[1],
            otel=_flag(env.get("QUANYI_OTEL"))
            or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
            metrics_address=env.get("QUANYI_METRICS_ADDRESS") or None,
        )



def _graphiql(configured: str | None, debug: bool) -> bool:
    """GraphiQL at GET /graphql: QUANYI_GRAPHIQL (1 or 0) when set, else on while debugging."""
    if configured is None or configured.strip() == "":
        return debug
    return _flag(configured)


def log_settings(env: Mapping[str, str]) -> tuple[str, str]:
    """(format, level) of the process's logs: QUANYI_LOG_FORMAT, else text when debugging or
    demonstrating and json otherwise; QUANYI_LOG_LEVEL, else INFO. Read apart from the other
    settings so logging is set up before reading them says anything."""
    developing = _flag(env.get("QUANYI_DEBUG")) or _flag(env.get("QUANYI_DEMO"))
    kind = env.get("QUANYI_LOG_FORMAT") or ("text" if developing else "json")
    return kind.strip().lower(), (env.get("QUANYI_LOG_LEVEL") or "INFO").strip().upper()


def _decode_key(configured: str, name: str) -> bytes:
    key = base64.urlsafe_b64decode(configured.encode() + b"=" * (-len(configured) % 4))
    if len(key) != 32:
        raise ValueError(f"{name} must be the base64 encoding of 32 bytes")
    return key


def _old_secret_keys(configured: str | None) -> tuple[bytes, ...]:
    """QUANYI_SECRET_KEYS_OLD: keys rotated out, comma-separated, each like QUANYI_SECRET_KEY."""
    return tuple(_decode_key(part.strip(), "each of QUANYI_SECRET_KEYS_OLD")
                 for part in (configured or "").split(",") if part.strip())


def _secret_key(configured: str | None, database_url: str) -> bytes:
    """The 32-byte key that encrypts card secrets.

    Production sets QUANYI_SECRET_KEY (base64 of 32 bytes). The embedded mode keeps a
    development key in a file beside the SQLite database so a restart can still
    decrypt what it stored.
    """
    if configured:
        return _decode_key(configured, "QUANYI_SECRET_KEY")
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise ValueError("QUANYI_SECRET_KEY is required when the database is not SQLite")
    database = url.database or ""
    folder = Path(database).resolve().parent if database not in ("", ":memory:") else Path.cwd()
    key_file = folder / (Path(database).name + ".secret.key" if database else "quanyi.secret.key")
    if key_file.exists():
        return base64.urlsafe_b64decode(key_file.read_bytes().strip())
    key = secrets.token_bytes(32)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(base64.urlsafe_b64encode(key))
    key_file.chmod(0o600)
    log.warning(
        "QUANYI_SECRET_KEY is not set: created a development key in %s. "
        "Set QUANYI_SECRET_KEY in production.",
        key_file,
    )
    return key


def development_webhook_secret(secret_key: bytes) -> bytes:
    """The embedded mode's payment webhook secret: derived from the secret key, so the
    demo verifies webhooks with nothing configured, and never equal to the key itself."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=b"quanyi payment webhook v1").derive(secret_key)


def _payment_webhook_secret(configured: str | None, secret_key: bytes, database_url: str) -> bytes:
    """The HMAC key payment notifications are signed with, shared with the payment provider.

    Production sets QUANYI_PAYMENT_WEBHOOK_SECRET (the provider's signing secret, as given).
    Without it the embedded mode derives a development secret; with any other database the
    webhook stays off, since the provider, not this process, issues the production secret.
    """
    if configured:
        if len(configured) < 16:
            raise ValueError("QUANYI_PAYMENT_WEBHOOK_SECRET must be at least 16 characters")
        return configured.encode()
    if make_url(database_url).get_backend_name() == "sqlite":
        return development_webhook_secret(secret_key)
    return b""  # the gateway says so when it starts (commands that serve nothing stay quiet)
