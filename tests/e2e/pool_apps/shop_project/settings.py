"""Settings of the shop project; the database file comes from the environment (the pool's env)."""

from __future__ import annotations

import os

SITE = "shop"
SECRET_KEY = "test-only-shop-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.e2e.pool_apps.shop_project.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SHOP_DB"]}}
USE_TZ = True
