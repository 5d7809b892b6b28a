"""A Django project of its own (blog): its settings and its SQLite database, for the isolation tests."""
