"""canonical contacts: orders' buyer phones, emails and device IDs in the form new orders store

New orders store the national mobile number (no +86 / 0086 / 86), the email address trimmed
and in lower case, and the device ID trimmed and in lower case (domain/contacts.py). Orders
placed before keep what the buyer typed; this brings them into the same form, so the risk
check's first-order look-up and the comparison of an idempotent retry find them. A phone
that is no mainland mobile number is left as it was. Data only: no schema change.

Revision ID: 0011_canonical_contacts
Revises: 0010_refunds_prepaid_audit
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0011_canonical_contacts'
down_revision = '0010_refunds_prepaid_audit'
branch_labels = None
depends_on = None

# The rule as of this revision, copied rather than imported: a migration must not change when
# domain/ does. Phones were accepted before as `\+?[0-9]{6,20}`, so only digits and a plus occur.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_COUNTRY = re.compile(r"\+?(?:0086|86)?([0-9]{11})")

order = sa.table(
    'order', sa.column('id', sa.Integer), sa.column('buyer_phone', sa.String),
    sa.column('buyer_email', sa.String), sa.column('device_id', sa.String),
)


def _national(phone: str) -> str | None:
    found = _COUNTRY.fullmatch(phone.strip())
    return found.group(1) if found and _MOBILE.fullmatch(found.group(1)) else None


def upgrade() -> None:
    bind = op.get_bind()
    for column in (order.c.buyer_email, order.c.device_id):
        canonical = sa.func.lower(sa.func.trim(column))
        bind.execute(sa.update(order).where(column.is_not(None), column != canonical).values({column.name: canonical}))
    # Every canonical phone has 11 characters: only the others can need rewriting.
    rows = bind.execute(
        sa.select(order.c.id, order.c.buyer_phone).where(sa.func.length(order.c.buyer_phone) != 11)
    ).all()
    for row_id, phone in rows:
        national = _national(phone)
        if national is not None:
            bind.execute(sa.update(order).where(order.c.id == row_id).values(buyer_phone=national))


def downgrade() -> None:
    # What each buyer typed is not kept: the canonical forms stay (they are valid input).
    pass
