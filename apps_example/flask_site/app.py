"""A small Flask app: a to-do list with an HTML form and a JSON API.

The form carries a per-session token that every POST must echo (the session cookie
alone is not enough), and Jinja escapes everything it prints. The JSON API takes only
`Content-Type: application/json`, which a page on another site cannot send without a
CORS preflight this app never grants: that is its cross-site protection.
The tasks live in memory, so they last until the server restarts.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, abort, flash, jsonify, redirect, render_template, request, session, url_for

app = Flask(__name__)
app.secret_key = os.environ.get("FLASK_SECRET_KEY", "dev-only-insecure-key-set-FLASK_SECRET_KEY-in-production")
app.config.update(SESSION_COOKIE_SAMESITE="Lax", MAX_CONTENT_LENGTH=64 * 1024)

MAX_TITLE = 200


@dataclass
class Task:
    id: int
    title: str
    done: bool
    created_at: str


class TaskList:
    """The tasks, in insertion order; the wsgi handler's threads share it, hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[int, Task] = {}

    def all(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def get(self, task_id: int) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def add(self, title: str) -> Task:
        with self._lock:
            task = Task(len(self._tasks) + 1, title, False, datetime.now(UTC).isoformat(timespec="seconds"))
            self._tasks[task.id] = task
            return task

    def toggle(self, task_id: int) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None:
                task.done = not task.done
            return task


tasks = TaskList()


def csrf_token() -> str:
    """This session's form token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_hex(16)
    return str(session["csrf"])


app.jinja_env.globals["csrf_token"] = csrf_token


def check_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        abort(403, "The form token is missing or stale: reload the page and try again.")


def clean_title(value: object) -> tuple[str, str | None]:
    """The title stripped, and what is wrong with it (None when nothing is)."""
    if not isinstance(value, str):
        return "", "title must be a string"
    title = value.strip()
    if not 1 <= len(title) <= MAX_TITLE:
        return title, f"title must be 1 to {MAX_TITLE} characters long"
    return title, None


@app.get("/")
def index() -> str:
    return render_template("index.html", tasks=tasks.all(), title="")


@app.post("/tasks")
def add_task() -> Any:
    check_csrf()
    title, error = clean_title(request.form.get("title", ""))
    if error:
        flash(error, "error")
        return render_template("index.html", tasks=tasks.all(), title=title), 422
    task = tasks.add(title)
    flash(f"Added task #{task.id}: {task.title}", "info")
    return redirect(url_for("index"), 303)


@app.post("/tasks/<int:task_id>/toggle")
def toggle_task(task_id: int) -> Any:
    check_csrf()
    if tasks.toggle(task_id) is None:
        abort(404)
    return redirect(url_for("index"), 303)


@app.get("/api/tasks")
def list_tasks() -> Any:
    return jsonify([asdict(task) for task in tasks.all()])


@app.post("/api/tasks")
def create_task() -> Any:
    if not request.is_json:
        return jsonify(error="send Content-Type: application/json"), 415
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error='expected a JSON object, as {"title": "..."}'), 400
    title, error = clean_title(data.get("title"))
    if error:
        return jsonify(error=error), 400
    task = tasks.add(title)
    return jsonify(asdict(task)), 201, {"Location": url_for("get_task", task_id=task.id)}


@app.get("/api/tasks/<int:task_id>")
def get_task(task_id: int) -> Any:
    task = tasks.get(task_id)
    if task is None:
        return jsonify(error=f"no task {task_id}"), 404
    return jsonify(asdict(task))
