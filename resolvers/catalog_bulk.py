"""Moving a catalog in through the API (importCatalog, 100 records a call), and reading the
catalog change log (catalogChanges), operators only."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from resolvers.catalog_commands import user_errors
from schema.catalog_admin import (
    CatalogChange,
    CatalogChangeConnection,
    CatalogChangeEdge,
    CatalogEntity,
    CatalogImportChange,
    CatalogImportCount,
)
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_cursor, encode_cursor, page_info, page_size
from services.catalog.changes import change_page
from services.catalog.commands import MAX_BULK, import_records
from services.catalog.plan import Action
from services.core.secret_box import SecretBox


@strawberry.type(description="What an import did (or, in a dry run, would do); with any userError, nothing.")
class ImportCatalogPayload:
    applied: bool
    counts: list[CatalogImportCount]
    changes: list[CatalogImportChange]
    user_errors: list[UserError]


@strawberry.type
class CatalogBulkMutation:
    @strawberry.mutation(
        permission_classes=ADMIN_ONLY,
        description="Create or update catalog objects by code from records of the catalog file's format "
        "(at most 100). All or nothing; `dryRun` reports what would change and writes nothing.",
    )
    async def import_catalog(self, info: Info, records: list[JSON], dry_run: bool = False) -> ImportCatalogPayload:
        if len(records) > MAX_BULK:
            error = UserError(field="records", message=f"at most {MAX_BULK} records a call; use `quanyi import-catalog` for a file", code="TOO_MANY")
            return ImportCatalogPayload(applied=False, counts=[], changes=[], user_errors=[error])
        async with info.context.uow() as uow:
            seeds = info.context.seeds or SecretBox(info.context.settings.secret_key, info.context.settings.old_secret_keys)
            done = await import_records(uow, records, dry_run=dry_run, actor=info.context.principal.actor,
                                        at=info.context.now, seeds=seeds)
        plan = done.plan
        counts = [CatalogImportCount(type=kind, created=c["CREATE"], updated=c["UPDATE"], unchanged=c["UNCHANGED"])
                  for kind, c in plan.counts().items()]
        changes = [CatalogImportChange(index=s.index, type=s.kind, code=s.key, action=s.action.value, fields=s.changed)
                   for s in plan.steps if s.action is not Action.UNCHANGED]
        return ImportCatalogPayload(applied=done.applied, counts=counts, changes=changes,
                                    user_errors=user_errors(plan.problems))


@strawberry.type
class CatalogChangesQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="Catalog changes, newest first: who, when, before, after.")
    async def catalog_changes(
        self, info: Info, entity: CatalogEntity | None = None, code: str | None = None,
        first: int | None = 20, after: str | None = None,
    ) -> CatalogChangeConnection:
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        before = decode_cursor(after, "CatalogChange") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            rows, more = await change_page(
                session, entity=entity.value if entity is not None else None, code=code, before_id=before, limit=limit
            )
        edges = [CatalogChangeEdge(cursor=encode_cursor("CatalogChange", row.id), node=CatalogChange.from_model(row))
                 for row in rows]
        return CatalogChangeConnection(edges=edges, page_info=page_info([e.cursor for e in edges], more=more, after=after))
