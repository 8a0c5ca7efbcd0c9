import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
application = get_wsgi_application()

from agentops.telemetry import instrument_django  # noqa: E402

instrument_django()
