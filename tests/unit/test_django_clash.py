"""`gateway check`'s warning about two Django projects in one interpreter: one project mounted twice is not two."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.routing.report import _django_projects

SETTINGS_LINE = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings}")\n'


@dataclass
class Options:
    app: str


@dataclass
class Handler:
    options: Options
    isolated: bool = False


class Routes:
    """What _django_projects reads of a router: each route's handler and where it is."""

    def __init__(self, apps: list[str]) -> None:
        self.apps = apps

    def handlers(self) -> Iterator[tuple[str, Handler]]:
        for index, app in enumerate(self.apps):
            yield f"vhost[0].route[{index}]", Handler(Options(app))


@pytest.fixture()
def projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for project in ("blogsite", "shopsite"):
        folder = tmp_path / project
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        for entry in ("asgi", "wsgi"):
            (folder / f"{entry}.py").write_text(SETTINGS_LINE.format(settings=f"{project}.settings"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith(("blogsite", "shopsite"))]:
        del sys.modules[name]


def test_a_projects_asgi_and_wsgi_modules_are_one_project(projects: Path) -> None:
    """The example's layout: Channels on asgi.py for /live/, pages on wsgi.py; one settings module."""
    found = _django_projects(Routes(["blogsite.asgi:application", "blogsite.wsgi:application"]))
    assert found == {"blogsite.settings": "vhost[0].route[0]"}


def test_two_projects_are_two(projects: Path) -> None:
    found = _django_projects(Routes(["blogsite.wsgi:application", "shopsite.wsgi:application"]))
    assert sorted(found) == ["blogsite.settings", "shopsite.settings"]
