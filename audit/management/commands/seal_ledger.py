import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.services import SigningKeyUnknown, ledger_seal


class Command(BaseCommand):
    help = (
        "Append a signed checkpoint over all ledger entries not yet sealed. "
        "With --watch N, seal every N seconds until interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--watch", type=float, metavar="SECONDS", help="seal every SECONDS until stopped")

    def handle(self, *args: Any, watch: float | None, **options: Any) -> None:
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
        # The bar appears only for big batches: a quiet ledger gives one short line per seal.
        with tqdm(unit="entry", file=self.stderr, delay=2.0) as bar:
            started = time.monotonic()
            try:
                checkpoint = ledger_seal(on_progress=bar.update)
            except SigningKeyUnknown as exc:
                raise CommandError(f"Not sealed: {exc}.") from None
            sealed = bar.n
        if checkpoint is None:
            self.stdout.write("Nothing to seal.")
            return
        rate = sealed / max(time.monotonic() - started, 1e-9)
        self.stdout.write(
            f"Sealed {sealed} entries; checkpoint at tree size {checkpoint.tree_size} "
            f"({rate:,.0f} entries/s)."
        )
