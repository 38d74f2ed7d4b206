"""Alembic migrations of the schema in server.db.models, run by server.db.engine.upgrade_database.
Revisions import only alembic and sqlalchemy."""
