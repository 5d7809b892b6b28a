"""Process isolation: an asgi/wsgi route's app in a pool of processes of its own (Passenger's model).

options.py      the route keys: isolation, pool, python, env, cwd
handler.py      IsolatedHandler: the route as a front process sees it
pool.py         AppPool: the policy (spawn on demand, grow, queue, shrink, recycle) and dispatch
app_process.py  one app process: spawn, wait until it serves, stop
scope_header.py what the front tells an app process beyond the HTTP request (client, root_path, user)
serving.py      inside an app process: the route's app on the gateway's core, on a Unix socket
"""
