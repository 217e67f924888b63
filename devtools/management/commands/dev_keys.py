from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devtools.devkeys import dev_keys_ensure


class Command(BaseCommand):
    help = "Create development keys under var/keys/ if missing (used with VRM_DEBUG=True)."
    requires_system_checks: list[str] = []  # it exists to make the key checks pass

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="print nothing when no key is new")

    def handle(self, *args: Any, quiet: bool = False, **options: Any) -> None:
        created = dev_keys_ensure(settings.DEV_KEYS_DIR)
        if created:
            self.stdout.write(f"Created development keys in {settings.DEV_KEYS_DIR}:")
            for path in created:
                self.stdout.write(f"  {path.name}")
        elif not quiet:
            self.stdout.write(f"Development keys are in {settings.DEV_KEYS_DIR}.")
        if not settings.DEBUG:
            self.stdout.write(
                self.style.WARNING("VRM_DEBUG is not True: these keys are only read in debug mode.")
            )
