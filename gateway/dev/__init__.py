"""`gateway dev`: one serving process, restarted when an app's Python files or the config change.

Where things are:
- supervisor.py  the long-lived process: binds the listeners once, runs one
                 serving child at a time, watches files, restarts the child
- child.py       the serving process (`python -m gateway.dev.child`): the usual
                 Server on the inherited sockets, or a 503 error page when the
                 config or an app cannot load
- plan.py        what is watched and which changes restart
- console.py     output for people: timed lines, colour on a terminal,
                 tracebacks, one access line per request
- banner.py      the start banner: every vhost as a clickable URL

Start at supervisor.run_dev. Nothing is imported here: the child runs as
`python -m gateway.dev.child`, and must not find itself imported already.
"""
