import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from audit.services import SigningKeyUnknown, ledger_seal
from audit.summaries import rebuild_pending, rebuild_request
from core.periodic import PeriodicCommand


class Command(PeriodicCommand):
    help = (
        "Append a signed checkpoint over all ledger entries not yet sealed. "
        "With --watch N, seal every N seconds until interrupted. With --rebuild-summaries, first "
        "recompute the auditor's summaries (grants, vendor days, late reads) from the entries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--watch", type=float, metavar="SECONDS", help="seal every SECONDS until stopped")
        parser.add_argument(
            "--rebuild-summaries",
            action="store_true",
            help="recompute the auditor's summaries from the entries (when verify_ledger finds them wrong)",
        )

    def handle(self, *args: Any, watch: float | None, rebuild_summaries: bool, **options: Any) -> None:
        if rebuild_summaries:
            rebuild_request(reason="seal_ledger --rebuild-summaries")
        if watch is None:
            self._seal_once()
            return
        try:
            while True:
                self._seal_once()
                time.sleep(watch)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _seal_once(self) -> None:
        rebuilding = rebuild_pending()
        if rebuilding:
            self.stdout.write(
                "Rebuilding the auditor's summaries from the entries first (a minute per 10M entries)."
            )
        # The bar appears only for big batches: a quiet ledger gives one short line per seal.
        with tqdm(unit="entry", file=self.stderr, delay=2.0) as bar:
            started = time.monotonic()
            try:
                checkpoint = ledger_seal(on_progress=bar.update)
            except SigningKeyUnknown as exc:
                raise CommandError(f"Not sealed: {exc}.") from None
            sealed = bar.n
        if rebuilding:
            self.stdout.write("Summaries rebuilt.")
        if checkpoint is None:
            self.stdout.write("Nothing to seal.")
            return
        rate = sealed / max(time.monotonic() - started, 1e-9)
        self.stdout.write(
            f"Sealed {sealed} entries; checkpoint at tree size {checkpoint.tree_size} "
            f"({rate:,.0f} entries/s)."
        )
