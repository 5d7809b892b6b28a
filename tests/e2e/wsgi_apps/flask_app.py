"""A small Flask app: a form, JSON in and out, a session cookie, URLs built under the mount."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = "test-only-secret"


@app.get("/")
def index() -> str:
    return "Hello from Flask"


@app.route("/form", methods=["GET", "POST"])
def form() -> Any:
    if request.method == "GET":
        return '<form method="post"><input name="name"><input name="colour"></form>'
    upload = request.files.get("attachment")
    return jsonify(
        name=request.form.get("name"),
        colours=request.form.getlist("colour"),
        attachment=upload.read().decode() if upload else None,
        attachment_name=upload.filename if upload else None,
    )


@app.post("/json")
def sum_numbers() -> Any:
    data = request.get_json()
    return jsonify(total=sum(data["numbers"]), echoed=data)


@app.get("/where")
def where() -> Any:
    return jsonify(
        url=url_for("where", _external=True),
        path=request.path,
        script_root=request.script_root,
        remote_addr=request.remote_addr,
        host=request.host,
    )


@app.get("/count")
def count() -> Any:
    session["count"] = session.get("count", 0) + 1
    return jsonify(count=session["count"])


@app.get("/go")
def go() -> Any:
    return redirect(url_for("where"))


@app.post("/chunked")
def chunked() -> Any:
    return jsonify(length=len(request.get_data()))
