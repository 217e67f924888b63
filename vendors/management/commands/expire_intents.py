from typing import Any

from core.periodic import PeriodicCommand
from vendors.intents import intents_expire
from vendors.webhooks import webhooks_retry_due


class Command(PeriodicCommand):
    help = (
        "Mark ended open intents expired (with their open offers) and offers past their validity, "
        "and send the intent webhook retries that are due. Safe to re-run; vendors already stop "
        "seeing an intent the moment it ends."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = intents_expire()
        retried = webhooks_retry_due()
        self.stdout.write(
            f"Expired {result.intents} intent(s) and {result.offers} offer(s); "
            f"retried {retried} webhook delivery(ies)."
        )
