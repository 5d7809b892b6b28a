"""Settings of the blog project; the database file comes from the environment (the pool's env)."""

from __future__ import annotations

import os

SITE = "blog"
SECRET_KEY = "test-only-blog-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.e2e.pool_apps.blog_project.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BLOG_DB"]}}
USE_TZ = True
