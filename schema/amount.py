"""How amounts are read from mutation inputs: one alias, so a stricter scalar replaces it in one place."""

from __future__ import annotations

from decimal import Decimal
from typing import TypeAlias

AmountInput: TypeAlias = Decimal
