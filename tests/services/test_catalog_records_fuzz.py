"""Whatever a catalog record holds, planning it answers with problems, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.catalog.plan import make_plan
from services.catalog.records import KEYS, TYPES
from services.core.database import Database

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(["QB-10", "qq-coins", "web", "tencent", "9.90", "-1", "CARD_CODE", "BUNDLE", "PHONE", "CNY"]),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["sku", "quantity", "supplier", "priority", "productCode", "cost", "x"]), inner, max_size=4),
    max_leaves=8)


@st.composite
def _records(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from([*TYPES, "other"]))
    keys = KEYS.get(kind, ("type", "code"))
    record = {key: draw(_values) for key in draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))}
    record["type"] = draw(st.one_of(st.just(kind), _values))
    return draw(st.one_of(st.just(record), _values))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_records(), min_size=1, max_size=4))
async def test_any_record_is_planned_without_an_exception(catalog_db: Database, records: list[Any]) -> None:
    async with catalog_db.fresh_sessions() as session:
        plan = await make_plan(session, records)
    assert plan.ok or plan.problems
