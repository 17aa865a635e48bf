"""Operators' mutations of brands, categories and products (the product center)."""

from __future__ import annotations

import strawberry
from strawberry import UNSET
from strawberry.scalars import JSON

from models import Brand as BrandRow
from models import Category as CategoryRow
from models import Product as ProductRow
from resolvers.catalog_commands import UPDATE_FIELDS, fresh, given, run
from schema.catalog import Brand, Category, Product
from schema.channel import NO_CHANNEL
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.catalog import commands
from services.catalog.archive import archive


@strawberry.input(description="A brand or category: its code (lower-case letters, digits, - and _) and name.")
class CreateTaxonomyInput:
    code: str
    name: str


@strawberry.input(description="Name the version you read: a stale one is a CONFLICT and nothing changes.")
class UpdateTaxonomyInput:
    id: strawberry.ID
    version: int
    name: str | None = UNSET


@strawberry.input(description="Archive an object: off sale for good, its past orders stay readable.")
class ArchiveInput:
    id: strawberry.ID
    version: int | None = strawberry.field(default=None, description="When given, a stale version is a CONFLICT.")


@strawberry.input(description="A product; brand and category by code, the slug is its code for good.")
class CreateProductInput:
    brand: str
    category: str
    name: str
    slug: str
    description: str | None = None
    image_urls: list[str] | None = strawberry.field(default=None, description="At most 10 https URLs.")
    attributes: JSON | None = strawberry.field(default=None, description="Name -> text, at most 30.")


@strawberry.input(description="Fields to change; those left out stay as they are.")
class UpdateProductInput:
    id: strawberry.ID
    version: int
    brand: str | None = UNSET
    category: str | None = UNSET
    name: str | None = UNSET
    description: str | None = UNSET
    image_urls: list[str] | None = UNSET
    attributes: JSON | None = UNSET


@strawberry.type
class BrandPayload:
    brand: Brand | None
    user_errors: list[UserError]


@strawberry.type
class CategoryPayload:
    category: Category | None
    user_errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[UserError]


async def _brand(info: Info, pk: int | None, errors: list[UserError]) -> BrandPayload:
    row = await fresh(info, BrandRow, pk) if pk is not None else None
    return BrandPayload(brand=Brand.from_model(row) if row else None, user_errors=errors)


async def _category(info: Info, pk: int | None, errors: list[UserError]) -> CategoryPayload:
    row = await fresh(info, CategoryRow, pk) if pk is not None else None
    return CategoryPayload(category=Category.from_model(row) if row else None, user_errors=errors)


async def _product(info: Info, pk: int | None, errors: list[UserError]) -> ProductPayload:
    row = await fresh(info, ProductRow, pk) if pk is not None else None
    return ProductPayload(product=Product.from_model(row, NO_CHANNEL) if row else None, user_errors=errors)


def _who(info: Info) -> dict[str, object]:
    return {"actor": info.context.principal.actor, "at": info.context.now}


async def _create(info: Info, record: dict[str, object]) -> tuple[int | None, list[UserError]]:
    saved, errors = await run(info, lambda uow: commands.create(uow, record, **_who(info)))  # type: ignore[arg-type]
    return (saved.id if saved else None), errors


async def _update(info: Info, kind: str, id: str, version: int, changes: dict[str, object]) -> tuple[int | None, list[UserError]]:
    pk = decode_pk(id, kind.capitalize())
    saved, errors = await run(
        info, lambda uow: commands.update(uow, kind, pk, version, changes, **_who(info)), UPDATE_FIELDS  # type: ignore[arg-type]
    )
    return (saved.id if saved else None), errors


async def _archive(info: Info, kind: str, input: ArchiveInput, type_name: str) -> tuple[int | None, list[UserError]]:
    pk = decode_pk(input.id, type_name)
    return await run(info, lambda uow: archive(uow, kind, pk, input.version, **_who(info)))  # type: ignore[arg-type]


@strawberry.type
class CatalogAdminMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a brand.")
    async def create_brand(self, info: Info, input: CreateTaxonomyInput) -> BrandPayload:
        return await _brand(info, *await _create(info, {"type": "brand", "code": input.code, "name": input.name}))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Rename a brand.")
    async def update_brand(self, info: Info, input: UpdateTaxonomyInput) -> BrandPayload:
        return await _brand(info, *await _update(info, "brand", input.id, input.version, given(name=input.name)))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Archive a brand no product on sale uses.")
    async def archive_brand(self, info: Info, input: ArchiveInput) -> BrandPayload:
        return await _brand(info, *await _archive(info, "brand", input, "Brand"))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a category.")
    async def create_category(self, info: Info, input: CreateTaxonomyInput) -> CategoryPayload:
        return await _category(info, *await _create(info, {"type": "category", "code": input.code, "name": input.name}))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Rename a category.")
    async def update_category(self, info: Info, input: UpdateTaxonomyInput) -> CategoryPayload:
        return await _category(info, *await _update(info, "category", input.id, input.version, given(name=input.name)))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Archive a category no product on sale uses.")
    async def archive_category(self, info: Info, input: ArchiveInput) -> CategoryPayload:
        return await _category(info, *await _archive(info, "category", input, "Category"))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a product; it is on no channel until listed.")
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductPayload:
        record = {"type": "product", "slug": input.slug, "name": input.name, "brand": input.brand,
                  "category": input.category, "description": input.description, "imageUrls": input.image_urls,
                  "attributes": input.attributes}
        return await _product(info, *await _create(info, record))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Change a product; recorded with its before and after.")
    async def update_product(self, info: Info, input: UpdateProductInput) -> ProductPayload:
        changes = given(brand=input.brand, category=input.category, name=input.name, description=input.description,
                        imageUrls=input.image_urls, attributes=input.attributes)
        return await _product(info, *await _update(info, "product", input.id, input.version, changes))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Take a product off sale for good; its orders stay readable.")
    async def archive_product(self, info: Info, input: ArchiveInput) -> ProductPayload:
        return await _product(info, *await _archive(info, "product", input, "Product"))
