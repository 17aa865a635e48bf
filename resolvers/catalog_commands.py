"""Running a product-center command for a resolver: one unit of work, problems as userErrors,
and the object read back once the change has committed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from strawberry import UNSET

from domain.catalog_input import CatalogRefused, Problem
from schema.context import Info
from schema.errors import UserError
from services.core.unit_of_work import UnitOfWork

T = TypeVar("T")

# Record fields as the API's inputs name them.
SKU_FIELDS = {r"^product$": "productId", r"^components\.(\d+)\.sku$": r"components.\1.skuId"}
LISTING_FIELDS = {r"^product$": "productId"}
UPDATE_FIELDS = {r"^(code|slug)$": "id"}


def user_errors(problems: list[Problem], renames: Mapping[str, str] | None = None) -> list[UserError]:
    errors = []
    for problem in problems:
        field = problem.field
        for pattern, replacement in (renames or {}).items():
            field = re.sub(pattern, replacement, field)
        errors.append(UserError(field=field or None, message=problem.message, code=problem.code))
    return errors


async def run(
    info: Info, command: Callable[[UnitOfWork], Awaitable[T]], renames: Mapping[str, str] | None = None,
) -> tuple[T | None, list[UserError]]:
    """The command's result, or None and why it was refused (then nothing was written)."""
    try:
        async with info.context.uow() as uow:
            result = await command(uow)
    except CatalogRefused as refusal:
        return None, user_errors(refusal.problems, renames)
    # Loaders made before the change would answer with what they read before it.
    if info.context.new_loaders is not None:
        info.context.loaders = info.context.new_loaders(info.context.db, info.context.now)
    return result, []


async def fresh(info: Info, model: type[Any], pk: int) -> Any:
    """The row as committed, read beside the unit of work that wrote it."""
    async with info.context.db.fresh_sessions() as session:
        return await session.get(model, pk)


def given(**fields: Any) -> dict[str, Any]:
    """The fields of an update input that were given (UNSET ones are left out)."""
    return {name: value for name, value in fields.items() if value is not UNSET}
