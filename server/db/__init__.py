"""The database: SQLAlchemy models, the engine and migrations runner, repositories.
May import rooms (for the values it stores) and nothing else of server."""
