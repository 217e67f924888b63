from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from devtools.scale import scale_seed


class Command(BaseCommand):
    help = (
        "Create synthetic people (<prefix>-000123@example.test, unusable passwords), each with a "
        "real data key and N sealed purchases, for load tests. Safe to re-run: people that "
        "already exist are skipped, so nothing is duplicated."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--people", type=int, required=True, help="how many people")
        parser.add_argument("--purchases", type=int, default=100, help="purchases per person")
        parser.add_argument("--prefix", default="scale", help="e-mail prefix that namespaces a run")
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per insert and commit")
        parser.add_argument(
            "--workers", type=int, default=1, help="processes seeding in parallel (PostgreSQL only)"
        )

    def handle(
        self,
        *args: Any,
        people: int,
        purchases: int,
        prefix: str,
        batch_size: int,
        workers: int,
        **options: Any,
    ) -> None:
        if workers > 1 and connection.vendor != "postgresql":
            raise CommandError("--workers > 1 needs PostgreSQL (SQLite takes one writer at a time).")
        bar = tqdm(
            total=people * purchases,
            unit="row",
            unit_scale=True,
            file=self.stderr,
            disable=options["verbosity"] == 0,
        )
        try:
            report = scale_seed(
                people=people,
                purchases=purchases,
                prefix=prefix,
                batch_size=batch_size,
                workers=workers,
                on_progress=bar.update,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        self.stdout.write(
            f"Created {report.people_created:,} people and {report.purchases_created:,} purchases "
            f"({report.people_skipped:,} people already existed) in {report.seconds:.1f} s "
            f"= {report.rows_per_second:,.0f} rows/s."
        )
