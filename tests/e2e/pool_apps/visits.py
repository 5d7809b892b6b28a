"""The one page both Django projects serve: which settings and database answered, and its visit count."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path


def page(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY)")
        cursor.execute("INSERT INTO visits DEFAULT VALUES")
        cursor.execute("SELECT COUNT(*) FROM visits")
        count = cursor.fetchone()[0]
    return JsonResponse(
        {
            "site": settings.SITE,
            "settings": os.environ["DJANGO_SETTINGS_MODULE"],
            "database": str(settings.DATABASES["default"]["NAME"]),
            "visits": count,
            "pid": os.getpid(),
            "script_name": request.META["SCRIPT_NAME"],
            "remote_addr": request.META["REMOTE_ADDR"],
        }
    )


def visits() -> Any:
    return path("", page)
