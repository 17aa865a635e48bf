"""Trusted documents: operators register the documents apps and partners may run.

With QUANYI_TRUSTED_DOCUMENTS=enforce a caller runs only the documents registered for every
caller (a storefront's app) or for its own key (a partner's integration); see
transport/persisted.py. A document is registered only if it parses and validates against
the schema, so the list never holds one that could not run.
"""

from __future__ import annotations

import hashlib

import strawberry
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, parse, validate
from sqlalchemy import select

from models import ApiKey as ApiKeyRow
from schema.context import Info
from schema.documents import TrustedDocument
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk, page_size
from services.documents import trusted
from services.documents.trusted import EVERYONE, TRUSTED_DOCUMENTS_CHANGED, Document

MAX_DOCUMENTS = 100  # in one call
MAX_DOCUMENT_LENGTH = 32 * 1024  # characters of one document (transport/input_limits.py)
MAX_LISTED = 500


@strawberry.input(description="Documents to register, for one key or (apiKeyId null) for every caller.")
class RegisterTrustedDocumentsInput:
    documents: list[str]
    api_key_id: strawberry.ID | None = None


@strawberry.type
class RegisterTrustedDocumentsPayload:
    documents: list[TrustedDocument]
    user_errors: list[UserError]


@strawberry.input(description="Registered documents to remove, by hash, from one key's list or (apiKeyId null) the global one.")
class RemoveTrustedDocumentsInput:
    sha256_hashes: list[str]
    api_key_id: strawberry.ID | None = None


@strawberry.type
class RemoveTrustedDocumentsPayload:
    removed: int
    user_errors: list[UserError]


async def _key_prefix(info: Info, api_key_id: strawberry.ID | None) -> str | None:
    """The prefix of the active key the documents are for, EVERYONE for null, None if no such key."""
    if api_key_id is None:
        return EVERYONE
    pk = decode_pk(api_key_id, "ApiKey")
    async with info.context.db.fresh_sessions() as session:
        return await session.scalar(select(ApiKeyRow.prefix).where(ApiKeyRow.id == pk, ApiKeyRow.revoked_at.is_(None)))


def check_document(schema: GraphQLSchema, text: str, *, max_tokens: int) -> Document | str:
    """The document to register, or why it cannot be: it must parse and validate."""
    if len(text) > MAX_DOCUMENT_LENGTH:
        return f"longer than {MAX_DOCUMENT_LENGTH} characters"
    try:
        document = parse(text, max_tokens=max_tokens)
    except GraphQLError as error:
        return f"does not parse: {error.message}"
    errors = validate(schema, document)
    if errors:
        return f"does not validate: {errors[0].message}"
    names = [d.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode) and d.name]
    return Document(hashlib.sha256(text.encode()).hexdigest(), text, names[0] if len(names) == 1 else "")


def _checked(info: Info, index: int, text: str) -> Document | UserError:
    checked = check_document(info.schema._schema, text, max_tokens=info.context.settings.limits.max_tokens)
    if isinstance(checked, str):
        return UserError(field=f"documents.{index}", message=checked, code="INVALID_DOCUMENT")
    return checked


@strawberry.type
class DocumentsMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Register documents as trusted; all or none.")
    async def register_trusted_documents(self, info: Info, input: RegisterTrustedDocumentsInput) -> RegisterTrustedDocumentsPayload:
        if not 1 <= len(input.documents) <= MAX_DOCUMENTS:
            problem = UserError(field="documents", message=f"from 1 to {MAX_DOCUMENTS} documents a call", code="TOO_MANY")
            return RegisterTrustedDocumentsPayload(documents=[], user_errors=[problem])
        checked = [_checked(info, index, text) for index, text in enumerate(input.documents)]
        problems = [entry for entry in checked if isinstance(entry, UserError)]
        key_prefix = await _key_prefix(info, input.api_key_id)
        if key_prefix is None:
            problems.insert(0, UserError(field="apiKeyId", message="no such active key", code="NOT_FOUND"))
        if problems:
            return RegisterTrustedDocumentsPayload(documents=[], user_errors=problems)
        assert key_prefix is not None
        documents = [entry for entry in checked if isinstance(entry, Document)]
        async with info.context.uow() as uow:
            rows = await trusted.register(uow.session, documents, key_prefix=key_prefix, actor=info.context.principal.actor)
            uow.publish(TRUSTED_DOCUMENTS_CHANGED, b"")
        return RegisterTrustedDocumentsPayload(documents=[TrustedDocument.from_model(row) for row in rows], user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Remove documents from a trusted list.")
    async def remove_trusted_documents(self, info: Info, input: RemoveTrustedDocumentsInput) -> RemoveTrustedDocumentsPayload:
        key_prefix = await _key_prefix(info, input.api_key_id)
        if key_prefix is None:
            problem = UserError(field="apiKeyId", message="no such active key", code="NOT_FOUND")
            return RemoveTrustedDocumentsPayload(removed=0, user_errors=[problem])
        digests = [digest.lower() for digest in input.sha256_hashes]
        async with info.context.uow() as uow:
            removed = await trusted.remove(uow.session, digests, key_prefix=key_prefix)
            uow.publish(TRUSTED_DOCUMENTS_CHANGED, b"")
        return RemoveTrustedDocumentsPayload(removed=removed, user_errors=[])


@strawberry.type
class DocumentsQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="Trusted documents, newest first: one key's, the global "
                      "ones (everyone: true), or all.")
    async def trusted_documents(
        self, info: Info, api_key_id: strawberry.ID | None = None, everyone: bool = False, first: int | None = None
    ) -> list[TrustedDocument]:
        limit = page_size(first, default=100, maximum=MAX_LISTED)
        key_prefix: str | None = None
        if api_key_id is not None:
            key_prefix = await _key_prefix(info, api_key_id) or "-"  # a revoked or unknown key: none listed
        elif everyone:
            key_prefix = EVERYONE
        async with info.context.db.fresh_sessions() as session:  # what the gateway enforces now
            rows = await trusted.listed(session, key_prefix=key_prefix, limit=limit)
        return [TrustedDocument.from_model(row) for row in rows]
