from __future__ import annotations

from django.urls import path

from notes import views

app_name = "notes"
urlpatterns = [
    path("", views.note_list, name="list"),
    path("notes/<int:pk>/", views.note_detail, name="detail"),
    path("live/", views.live, name="live"),
]
