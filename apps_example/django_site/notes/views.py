"""The public pages: every note, newest first, and one note."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from notes.models import Note


def note_list(request: HttpRequest) -> HttpResponse:
    return render(request, "notes/note_list.html", {"notes": Note.objects.all()[:100]})


def note_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "notes/note_detail.html", {"note": get_object_or_404(Note, pk=pk)})


def live(request: HttpRequest) -> HttpResponse:
    """The live counter page; its WebSocket goes to notes/consumers.py through django_site/asgi.py."""
    return render(request, "notes/live.html")
