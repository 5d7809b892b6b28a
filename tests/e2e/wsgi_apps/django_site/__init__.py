"""A minimal Django project: the admin, sessions, CSRF, static files; SQLite where the test says."""
