"""Looking ahead in a query: does the client ask for a field below this one?"""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.types.nodes import SelectedField, Selection


def selects(selections: Sequence[Selection], path: Sequence[str]) -> bool:
    """True when the selection reaches `path` (field names), through any fragments."""
    if not path:
        return True
    head, rest = path[0], path[1:]
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == head and selects(selection.selections, rest):
                return True
        elif selects(selection.selections, path):
            return True
    return False
