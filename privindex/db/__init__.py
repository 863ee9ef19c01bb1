"""The database: the connection per app and thread, SQLite or PostgreSQL (connection.py),
the peewee models (models.py), and the frozen schema migrations (migrations.py). Knows
nothing of the services above it."""
