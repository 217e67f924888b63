"""WSGI entry point (gunicorn vrm.wsgi). Refuses to start when a key is missing or malformed."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vrm.settings")
application = get_wsgi_application()

from vrm.startup import fail_on_check_errors  # noqa: E402

fail_on_check_errors()
