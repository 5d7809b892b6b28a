"""A Django project of its own (shop): its settings and its SQLite database, for the isolation tests."""
