#!/usr/bin/env python3
"""Prepare the example Django project for `make run`: migrate, collect static files, add the demo superuser.

Idempotent and quick when there is nothing to do: migrations run only when some are
unapplied, collectstatic copies only changed files, and the superuser is created only
when no user of that name exists (an existing one keeps the password it has).
The database and static folder come from DJANGO_DB and DJANGO_STATIC_ROOT, as in the
project's settings, so the tests prepare a temporary copy the same way.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

DJANGO_SITE = Path(__file__).resolve().parents[1] / "apps_example" / "django_site"
DEMO_USER = "admin"
DEMO_PASSWORD = "gateway-demo"  # for a laptop demo only: `manage.py changepassword admin` changes it


def setup_django() -> None:
    sys.path.insert(0, str(DJANGO_SITE))
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
    import django

    django.setup()


def migrate() -> bool:
    """Apply unapplied migrations; False when there were none."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return False
    call_command("migrate", interactive=False, verbosity=0)
    return True


def collect_static() -> int:
    """Copy the apps' static files into STATIC_ROOT; the number copied (0 when all are current)."""
    from django.core.management import call_command

    summary = call_command("collectstatic", interactive=False, verbosity=1, stdout=io.StringIO())
    copied = re.match(r"\s*(\d+) static files? copied", summary or "")  # "130 static files copied to ..."
    return int(copied.group(1)) if copied else 0


def create_demo_user() -> bool:
    """The demo superuser, unless a user of that name exists; False when it did."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    if users.filter(username=DEMO_USER).exists():
        return False
    users.create_superuser(DEMO_USER, "admin@example.com", DEMO_PASSWORD)
    return True


def main() -> None:
    setup_django()
    from django.conf import settings

    database = Path(settings.DATABASES["default"]["NAME"])
    database.parent.mkdir(parents=True, exist_ok=True)
    done = []
    if migrate():
        done.append(f"migrated {database}")
    copied = collect_static()
    if copied:
        plural = "s" if copied != 1 else ""
        done.append(f"collected {copied} static file{plural} into {settings.STATIC_ROOT}")
    if create_demo_user():
        done.append(f"created the superuser {DEMO_USER!r}")
    print("example-setup: " + ("; ".join(done) if done else "Django is up to date"))
    print(f"Django admin: http://django.localhost:8080/admin/ (user {DEMO_USER}, password {DEMO_PASSWORD})")


if __name__ == "__main__":
    main()
