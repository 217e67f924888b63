"""Run the store's periodic work on its schedule, in one process (`manage.py periodic`)."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

logger = logging.getLogger("vrm.periodic")

# Every job, how often it runs (seconds), and why that often. Each is a PeriodicCommand: a run
# that overlaps a still-running one (this scheduler on another node, cron) does nothing.
SCHEDULE: tuple[tuple[str, int], ...] = (
    ("seal_ledger", 10),  # checkpoints every few seconds: witnesses and proofs follow the ledger
    ("expire_grants", 60),  # ended grants' receipts and entries (their tokens fail without it)
    ("expire_intents", 300),  # ended intents and offers, webhook retries
    ("send_reminders", 3600),  # refills, warranties, grants ending; never sends twice
    ("destroy_retired_stores", 86400),  # stores set aside 30 days ago
)


class Command(BaseCommand):
    help = (
        "Run the periodic work on its schedule until stopped: seal the ledger every 10 s, expire "
        "grants every minute, intents every 5 minutes, send reminders hourly, destroy retired "
        "stores daily. Safe to run on several nodes at once. --once runs each job once and stops."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run every job once, then stop")

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        due = dict.fromkeys((name for name, _ in SCHEDULE), 0.0)
        every = dict(SCHEDULE)
        try:
            while True:
                now = time.monotonic()
                for name, _ in SCHEDULE:
                    if now >= due[name]:
                        self._run(name)
                        due[name] = time.monotonic() + every[name]
                if once:
                    return
                time.sleep(max(0.5, min(due.values()) - time.monotonic()))
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _run(self, name: str) -> None:
        """Run one job; log what it said, how long it took, and a failure without stopping the rest."""
        out = io.StringIO()
        started = time.perf_counter()
        try:
            # A long-lived process: drop a connection the database closed (a restart, a failover)
            # so the next job opens a new one instead of every job failing from now on. (Never
            # inside a transaction: a caller's, such as a test's, is not this loop's to end.)
            if not connection.in_atomic_block:
                close_old_connections()
            call_command(name, stdout=out, stderr=io.StringIO())
        except Exception:
            logger.exception("periodic job failed", extra={"job": name})
            self.stderr.write(f"{name}: failed (see the log)")
            return
        said = out.getvalue().strip().splitlines()
        summary = said[-1] if said else ""
        logger.info(
            "periodic job",
            extra={
                "job": name,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "said": summary,
            },
        )
        self.stdout.write(f"{name}: {summary}")
