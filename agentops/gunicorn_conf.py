"""gunicorn settings for the console and the API (the Procfile's ``web``), read from the environment.

Threads, not processes, absorb slow clients; each thread keeps at most one database connection,
so one ``web`` process holds at most ``WEB_CONCURRENCY × WEB_THREADS`` connections (fewer with
``DB_POOL_MAX_SIZE``). SSE streams belong on the ``events`` process (uvicorn, ``agentops.asgi``).
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - behind a proxy
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# A request that takes longer than this is killed (and logged); the API's slowest path is well under it.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow forever; jitter avoids all at once.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG", "0") == "1" else None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket lives in $HOME, shared by every gunicorn of the user; the platform or
# supervisor signals the master instead (HUP reloads, TERM stops).
control_socket_disable = True
