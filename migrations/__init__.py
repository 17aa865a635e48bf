"""Alembic migrations; `quanyi migrate` runs them to head."""
