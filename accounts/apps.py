from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Signal receivers: a failed login counts against its address; a login confirms the password.
        from accounts import limits, reauth  # noqa: F401
