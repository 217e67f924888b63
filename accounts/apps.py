from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import reauth  # noqa: F401  (counts a login as a fresh password confirmation)
