from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Demo and scale seeding and development keys; installed only with VRM_DEBUG=True."""

    name = "devtools"
