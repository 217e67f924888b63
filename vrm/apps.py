from django.apps import AppConfig


class VrmConfig(AppConfig):
    name = "vrm"

    def ready(self) -> None:
        from vrm import checks  # noqa: F401  (registers the system checks)
