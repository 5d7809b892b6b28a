"""The echo app, plus a journal of what reached it, so a test can tell "the app never saw this".

The journal (a file named by $CORPUS_JOURNAL) gets one JSON line when the app is
called ("start") and one when it has received the whole request body ("complete"),
each with the client port, so a test finds the lines of its own connection. A line
is written and flushed before the app answers, so once the client has its answer
the journal already says what the app saw.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.support.apps import echo

Scope = dict[str, Any]


def _note(event: str, scope: Scope) -> None:
    client = scope.get("client") or ("", 0)
    line = json.dumps({"event": event, "port": client[1], "method": scope["method"], "path": scope["path"]})
    with open(os.environ["CORPUS_JOURNAL"], "a", encoding="utf-8") as journal:
        journal.write(line + "\n")


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    _note("start", scope)

    async def recording_receive() -> dict[str, Any]:
        message: dict[str, Any] = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            _note("complete", scope)
        return message

    await echo(scope, recording_receive, send)
