"""Alembic environment for the store (run programmatically by :meth:`Database.open`)."""
