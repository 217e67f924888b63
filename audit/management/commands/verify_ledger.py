from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from audit.selectors import checkpoint_latest
from audit.services import ledger_verify


class Command(BaseCommand):
    help = (
        "Recompute every ledger leaf and checkpoint root from the entries and check every "
        "signature. Exit 0 if intact; otherwise print the first bad entry or checkpoint and exit 1."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        newest = checkpoint_latest()
        total = newest.tree_size if newest else 0
        with tqdm(total=total, unit="entry", file=self.stderr, delay=2.0) as bar:
            result = ledger_verify(on_progress=bar.update)
        if not result.ok:
            self.stderr.write(f"ledger NOT intact: {result.first_problem}")
            raise SystemExit(1)
        self.stdout.write(f"ledger intact: {result.entries} entries, {result.checkpoints} checkpoints")
