from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from personal_data.services import master_key_rotate


class Command(BaseCommand):
    help = (
        "Rewrap every key the master key wraps (each live grant's key, and the data keys of "
        "accounts not yet moved to person-held keys) under the newest master key (the first in "
        "VRM_MASTER_KEYS). Safe to interrupt and re-run: each batch commits on its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        bar: tqdm[Any] | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, unit="key", file=self.stderr, disable=total == 0)
            bar.update(done)

        report = master_key_rotate(batch_size=batch_size, on_batch=progress)
        if bar is not None:
            bar.close()
        self.stdout.write(
            f"Rewrapped {report.rewrapped} keys; {report.already_current} were already "
            f"under the newest master key; {len(report.failed)} could not be unwrapped."
        )
        for key_id in report.failed:
            self.stderr.write(f"  cannot unwrap the key of {key_id}")
        if report.failed:
            raise SystemExit(1)
