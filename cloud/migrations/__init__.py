"""Alembic migrations of the cloud database (run by `printfabric-cloud migrate` and at start)."""
