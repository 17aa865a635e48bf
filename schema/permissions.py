"""Who may call a field: strawberry permission classes, one rule each, codes in extensions.

List `HasKey` before `IsAdmin` so an anonymous caller hears UNAUTHENTICATED, and a
caller with the wrong key FORBIDDEN.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from schema.context import Info


class HasKey(BasePermission):
    message = "this needs a key: Authorization: Bearer <key>"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.role is not None


class IsAdmin(BasePermission):
    message = "operators only: use an ADMIN key"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.is_admin


ADMIN_ONLY = [HasKey, IsAdmin]
