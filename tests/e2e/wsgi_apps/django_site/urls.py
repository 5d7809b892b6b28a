from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path


def where(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "script_name": request.META["SCRIPT_NAME"],
            "path_info": request.path_info,
            "path": request.path,
            "absolute": request.build_absolute_uri(),
        }
    )


urlpatterns = [
    path("admin/", admin.site.urls),
    path("where/", where),
]
