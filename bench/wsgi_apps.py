"""The WSGI benchmark's app, a Flask hello world, served by gateway's wsgi handler and by gunicorn."""

from __future__ import annotations

from flask import Flask, Response

from bench.apps import HELLO

flask_app = Flask("bench")


@flask_app.get("/")
def hello() -> Response:
    return Response(HELLO, mimetype="text/plain")
