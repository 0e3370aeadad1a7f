"""Alembic migrations of the store schema (see stockade.store.migrate)."""
