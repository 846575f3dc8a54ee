"""Alembic migrations of the job tables; run them with jobs.upgrade(engine)."""
