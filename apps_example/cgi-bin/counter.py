#!/usr/bin/env python3
"""A visit counter: one number in a file, locked while it is read and rewritten.

The file is COUNTER_FILE from the route's `env` (CGI scripts get no other
environment from the server), else one in the system's temporary folder.
"""

import fcntl
import os
import tempfile

path = os.environ.get("COUNTER_FILE") or os.path.join(tempfile.gettempdir(), "gateway-cgi-counter")
with open(path, "a+", encoding="ascii") as counter:
    fcntl.flock(counter, fcntl.LOCK_EX)
    counter.seek(0)
    text = counter.read().strip()
    visits = (int(text) if text.isdigit() else 0) + 1
    counter.seek(0)
    counter.truncate()
    counter.write(f"{visits}\n")

print("Content-Type: text/plain; charset=utf-8")
print("Cache-Control: no-store")
print()
print(f"This page has been visited {visits} time{'s' if visits != 1 else ''}.")
