"""Re-sealing every secret under the current key, while the gateways serve.

After QUANYI_SECRET_KEY changes (the old key moved to QUANYI_SECRET_KEYS_OLD), secrets
sealed under the old key still open, and `quanyi reseal-secrets` moves them to the new one
in the background: card codes in batches (each batch one short transaction, rows taken
with SKIP LOCKED so orders and deliveries are not held up), with their duplicate digest
under the new key, then the suppliers' signing secrets and the marketplaces' app secrets. It can be stopped and run again at
any time: it only looks at what is not sealed under the current key yet. When it reports
nothing left, the old key can be removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update

from models import CardCode, MarketplaceConnection, Supplier
from services.core.database import Database
from services.core.secret_box import SecretBox


@dataclass
class Resealed:
    codes: int = 0
    suppliers: int = 0
    marketplaces: int = 0


def _not_current(column: object, box: SecretBox) -> object:
    header = box.header
    return func.substr(column, 1, len(header)) != header  # type: ignore[arg-type]


async def left(db: Database, box: SecretBox) -> int:
    """Secrets still sealed under an old key."""
    async with db.fresh_sessions() as session:
        codes = await session.scalar(select(func.count()).select_from(CardCode).where(
            _not_current(CardCode.secret_ciphertext, box)))
        suppliers = await session.scalar(select(func.count()).select_from(Supplier).where(
            Supplier.secret_ciphertext.is_not(None), _not_current(Supplier.secret_ciphertext, box)))
        markets = await session.scalar(select(func.count()).select_from(MarketplaceConnection).where(
            _not_current(MarketplaceConnection.secret_ciphertext, box)))
    return int(codes or 0) + int(suppliers or 0) + int(markets or 0)


async def reseal(db: Database, box: SecretBox, *, batch: int = 500,
                 progress: Callable[[Resealed], None] | None = None) -> Resealed:
    done = Resealed()
    while True:
        async with db.sessions() as session, session.begin():
            rows = (await session.execute(
                select(CardCode.id, CardCode.sku_id, CardCode.secret_ciphertext)
                .where(_not_current(CardCode.secret_ciphertext, box))
                .order_by(CardCode.id).limit(batch).with_for_update(skip_locked=True)
            )).all()
            for code_id, sku_id, sealed in rows:
                context = str(sku_id).encode()
                secret = box.open(sealed, context=context)
                await session.execute(
                    update(CardCode).where(CardCode.id == code_id)
                    .values(secret_ciphertext=box.seal(secret, context=context), secret_digest=box.digest(secret))
                    .execution_options(synchronize_session=False)
                )
        done.codes += len(rows)
        if progress is not None and rows:
            progress(done)
        if len(rows) < batch:
            break
    async with db.sessions() as session, session.begin():
        suppliers = (await session.execute(
            select(Supplier.id, Supplier.code, Supplier.secret_ciphertext)
            .where(Supplier.secret_ciphertext.is_not(None), _not_current(Supplier.secret_ciphertext, box))
            .with_for_update(skip_locked=True)
        )).all()
        for supplier_id, code, sealed in suppliers:
            context = b"supplier:" + code.encode()  # services/fulfilment/supplier_registry.py
            await session.execute(
                update(Supplier).where(Supplier.id == supplier_id)
                .values(secret_ciphertext=box.seal(box.open(sealed, context=context), context=context))
                .execution_options(synchronize_session=False)
            )
        done.suppliers = len(suppliers)
        markets = (await session.execute(
            select(MarketplaceConnection.id, MarketplaceConnection.channel_id, MarketplaceConnection.secret_ciphertext)
            .where(_not_current(MarketplaceConnection.secret_ciphertext, box))
            .with_for_update(skip_locked=True)
        )).all()
        for connection_id, channel_id, sealed in markets:
            context = f"marketplace:{channel_id}".encode()  # services/marketplaces/connections.py
            await session.execute(
                update(MarketplaceConnection).where(MarketplaceConnection.id == connection_id)
                .values(secret_ciphertext=box.seal(box.open(sealed, context=context), context=context))
                .execution_options(synchronize_session=False)
            )
        done.marketplaces = len(markets)
    return done
