import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devtools.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Create or refresh the demo accounts, their records and the demo shop's OAuth apps "
        "(idempotent). Each run sets fresh demo passwords and client secrets and prints them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the logins as one JSON object")

    def handle(self, *args: Any, json: bool = False, **options: Any) -> None:
        logins = demo_seed()
        if json:
            self.stdout.write(_dumps(logins))
            return
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Log in at /accounts/login/ as:"))
        for person in logins["people"]:
            self.stdout.write(f"  person        {person['email']:<22} {person['password']}")
        if "vendor_staff" in logins:
            staff = logins["vendor_staff"]
            self.stdout.write(f"  vendor staff  {staff['email']:<22} {staff['password']}")
        auditor = logins["auditor"]
        self.stdout.write(f"  auditor       {auditor['email']:<22} {auditor['password']}")
        for label in ("app", "recall_client"):
            if label in logins:
                self.stdout.write(f"  {label}: {_dumps(logins[label])}")


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=None)
