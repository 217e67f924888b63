from typing import Any

from core.periodic import PeriodicCommand
from personal_data.services import retired_stores_destroy


class Command(PeriodicCommand):
    help = (
        "Destroy the stores set aside after a password reset without the recovery code once their "
        "30 days are up: their key wraps and every record go, with a ledger entry each. Run it "
        "daily; safe to re-run and to run on several machines at once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stores, records = retired_stores_destroy()
        self.stdout.write(
            f"Destroyed {stores} store{'s' if stores != 1 else ''} set aside "
            f"({records} record{'s' if records != 1 else ''})."
        )
