"""Code pools: importCardCodes, for operators."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.card_codes import CodeInput, RowRejection
from models import Sku as SkuRow
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.core.events import stock_event
from services.core.jobs import JOBS_TOPIC
from services.core.secret_box import SecretBox
from services.inventory.code_import import import_codes

MAX_CODES_PER_CALL = 1_000

# Domain field names as the GraphQL input spells them.
_FIELDS = {"secret": "secret", "number": "number", "expires_at": "expiresAt", "uses": "uses"}


@strawberry.input(
    description="One code for a SKU's pool. The secret is stored encrypted and never returned here."
)
class CardCodeInput:
    secret: str
    number: str | None = strawberry.field(
        default=None, description="The card number (卡号), where the code has one."
    )
    expires_at: datetime | None = None
    uses: int | None = strawberry.field(
        default=None, description="Activations of a SERIAL; 1 when omitted."
    )


@strawberry.type
class ImportCardCodesPayload:
    imported: int
    duplicates: int
    user_errors: list[UserError]



def _refused(field: str, message: str, code: str) -> ImportCardCodesPayload:
    return ImportCardCodesPayload(
        imported=0, duplicates=0, user_errors=[UserError(field=field, message=message, code=code)]
    )


def _user_error(rejection: RowRejection) -> UserError:
    field = f"codes.{rejection.row}" + (f".{_FIELDS[rejection.field]}" if rejection.field else "")
    return UserError(field=field, message=rejection.message, code=rejection.reason.value)


@strawberry.type
class CodesMutation:
    @strawberry.mutation(
        permission_classes=ADMIN_ONLY,
        description=f"Add up to {MAX_CODES_PER_CALL:,} codes to a CARD_CODE or SERIAL SKU's pool; "
        "presale orders waiting for codes are served first. Each rejected code is a user error; the rest are imported.",
    )
    async def import_card_codes(
        self, info: Info, sku_id: strawberry.ID, codes: list[CardCodeInput]
    ) -> ImportCardCodesPayload:
        pk = decode_pk(sku_id, "Sku", field="skuId")
        if len(codes) > MAX_CODES_PER_CALL:
            return _refused(
                "codes",
                f"at most {MAX_CODES_PER_CALL:,} codes a call; use `quanyi import-codes` for files",
                "TOO_MANY_CODES",
            )
        rows = [
            CodeInput(
                row=index,
                secret=code.secret,
                number=code.number,
                expires_at=code.expires_at,
                uses=code.uses,
            )
            for index, code in enumerate(codes)
        ]
        async with info.context.uow() as uow:
            sku = await uow.session.get(SkuRow, pk)
            if sku is None:
                return _refused("skuId", "no such SKU", "NOT_FOUND")
            if not sku.kind.is_code_backed:
                return _refused(
                    "skuId", f"a {sku.kind.value} SKU has no code pool", "WRONG_SKU_KIND"
                )
            box = SecretBox(info.context.settings.secret_key, info.context.settings.old_secret_keys)
            result = await import_codes(uow.session, box, sku, rows, now=info.context.now)
            if result.imported:
                stock_event(uow, [sku.id])  # more to sell, and presale orders served from it
            if result.served_lines:
                uow.publish(JOBS_TOPIC, b"")  # paid presale orders deliver now
        return ImportCardCodesPayload(
            imported=result.imported,
            duplicates=result.duplicates,
            user_errors=[_user_error(rejection) for rejection in result.rejections],
        )
