"""ASGI entry point: ``uvicorn agentops.asgi:application`` (the Procfile's ``events`` process).

It serves the whole application, but exists for the Server-Sent Events streams
(``/api/v1/runs/<id>/events``): that view is async, so an open stream costs a coroutine that
sleeps between polls, not a worker thread for up to five minutes, and its queries share
``EVENTS_DB_THREADS`` threads (so as many connections) per process. The console and the rest of
the API are served by gunicorn (``agentops.wsgi``); a proxy routes ``…/events`` here.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
application = get_asgi_application()

from agentops.telemetry import instrument_django  # noqa: E402

instrument_django()
