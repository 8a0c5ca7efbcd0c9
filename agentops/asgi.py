"""ASGI entry point: ``uvicorn agentops.asgi:application`` (the Procfile's ``events`` process).

It serves the Server-Sent Events streams (``/api/v1/runs/<id>/events``) and ``/healthz``, nothing
else. The events view is async, so an open stream costs a coroutine that sleeps between polls, not a
worker thread for up to five minutes, and its queries share ``EVENTS_DB_THREADS`` threads (so as many
database connections) per process. The console and the rest of the API are sync Django, served by
gunicorn (``agentops.wsgi``): under ASGI each of their requests would get a thread, and keep a
connection, of its own, which is why this server answers 404 for them instead of serving them.
"""

import json
import os
import re
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
django_application = get_asgi_application()

from agentops.telemetry import instrument_django  # noqa: E402

instrument_django()

SERVED = re.compile(r"^/api/v1/runs/[^/]+/events$|^/healthz$")
NOT_HERE = json.dumps({"error": {"type": "not_found", "message": "This server only serves run event streams."}}).encode()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and not SERVED.match(scope["path"]):
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(NOT_HERE)).encode())]})
        await send({"type": "http.response.body", "body": NOT_HERE})
        return
    await django_application(scope, receive, send)
