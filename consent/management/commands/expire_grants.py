from typing import Any

from consent.services import grants_expire_overdue
from core.periodic import PeriodicCommand


class Command(PeriodicCommand):
    help = (
        "Mark every grant past its end as expired, delete its tokens, and write its receipt and "
        "ledger entry. Safe to re-run; tokens of ended grants already fail without it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = grants_expire_overdue()
        self.stdout.write(f"Expired {count} grant{'s' if count != 1 else ''}.")
