"""ASGI entry point. Refuses to start when a key is missing or malformed."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vrm.settings")
application = get_asgi_application()

from vrm.startup import fail_on_check_errors  # noqa: E402

fail_on_check_errors()
