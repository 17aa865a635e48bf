"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import strawberry

from config import Settings
from domain.access import Principal
from services.database import Database

if TYPE_CHECKING:
    from resolvers.loaders import Loaders


@dataclass
class Context:
    settings: Settings
    db: Database
    loaders: Loaders
    principal: Principal
    request_id: str


Info: TypeAlias = strawberry.Info[Context, None]
