from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Installed by bench.settings alone: the baselines' table never exists outside a benchmark."""

    name = "bench"
    default_auto_field = "django.db.models.BigAutoField"
