"""Periodic management commands: a run that overlaps a still-running one does nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, OutputWrapper

from core.locks import exclusive


class PeriodicCommand(BaseCommand):
    """A command run on a schedule (cron, a timer or `manage.py periodic`), one run at a time.

    The lock is the command's name, taken around the whole run: a second run started while the
    first still goes (a slow seal, two nodes' schedulers) says so and does nothing.
    """

    def execute(self, *args: Any, **options: Any) -> Any:
        name = self.__module__.rsplit(".", 1)[-1]
        with exclusive(name) as held:
            if not held:
                out = OutputWrapper(options["stdout"]) if options.get("stdout") else self.stdout
                out.write(f"{name}: another run is still going; this one did nothing.")
                return None
            return super().execute(*args, **options)
