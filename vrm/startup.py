"""Start-up guard for servers that do not run system checks themselves (gunicorn, uvicorn)."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def fail_on_check_errors() -> None:
    """Raise at start-up if any system check reports an error (missing keys, ...)."""
    errors = [m for m in checks.run_checks() if m.level >= checks.ERROR]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{m.id}: {m.msg}" for m in errors))
