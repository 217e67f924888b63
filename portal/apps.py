from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The person's pages and the workflows that cross apps; it has no models."""

    name = "portal"
