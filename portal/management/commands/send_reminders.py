from typing import Any

from tqdm import tqdm

from core.periodic import PeriodicCommand
from portal.reminders import reminders_send


class Command(PeriodicCommand):
    help = (
        "Make the reminders that are due (refills, warranties, grants ending, 90-day grant "
        "summaries) and e-mail those whose people opted in. Sends nothing twice; safe to re-run "
        "and to overlap with another run."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        # A bar on a terminal only; cron's log gets the summary line.
        with tqdm(
            desc="Checking", unit=" due", disable=not self.stderr.isatty() or options["verbosity"] < 1
        ) as bar:
            run = reminders_send(progress=lambda _seen: bar.update(1))
        made = ", ".join(f"{n} {kind}" for kind, n in run.made.items())
        self.stdout.write(
            f"Made {sum(run.made.values())} reminders ({made}); "
            f"{run.skipped_off} turned off; e-mailed {run.emailed}."
        )
