from django.apps import AppConfig


class AuditorConfig(AppConfig):
    """The auditor's pages, selectors, anomaly rules and exports; it has no models."""

    name = "auditor"
