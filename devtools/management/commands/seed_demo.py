import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devtools.demo import demo_logins_text, demo_seed

WARNING = (
    "seed_demo RESETS the passwords of the demo accounts (alex, sam, shop, audit @example.com) "
    "and the demo apps' client secrets on every run: the old ones stop working."
)


class Command(BaseCommand):
    help = (
        "Create or refresh the demo accounts, their records, the demo shop's OAuth apps, alex's "
        "grant to the demo app with some accesses and a recall alert, then seal the ledger "
        "(idempotent). WARNING: each run RESETS the demo accounts' passwords and the demo apps' "
        "client secrets, and prints the new ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the logins as one JSON object")
        parser.add_argument(
            "--save",
            type=Path,
            metavar="FILE",
            help="write the logins to FILE (mode 0600) instead of printing them; "
            "`make run` prints it once the server listens (serve_demo)",
        )

    def handle(self, *args: Any, json: bool = False, save: Path | None = None, **options: Any) -> None:
        logins = demo_seed()
        if json:
            self.stdout.write(_dumps(logins))
            return
        if save is not None:
            save.parent.mkdir(parents=True, exist_ok=True)
            save.write_text(_dumps(logins))
            save.chmod(0o600)
            self.stdout.write("Demo data is ready; " + WARNING)
            return
        self.stdout.write(self.style.WARNING(WARNING))
        self.stdout.write(demo_logins_text(logins, base_url=None))


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=None)
