import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands.runserver import Command as RunserverCommand

from devtools.demo import demo_logins_text


class Command(RunserverCommand):
    """Django's runserver (static files come from WhiteNoise, as with runserver_nostatic) that
    prints the demo logins after its own banner, so they are the last thing `make run` shows."""

    help = (
        "Serve the development site like runserver; once it listens, print the demo logins "
        "that `seed_demo --save FILE` wrote, with the full URLs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--logins", type=Path, metavar="FILE", help="the file seed_demo --save wrote")

    logins_file: Path | None = None

    def handle(self, *args: Any, logins: Path | None = None, **options: Any) -> None:
        self.logins_file = logins
        super().handle(*args, **options)

    def on_bind(self, server_port: int) -> None:
        super().on_bind(server_port)
        if self.logins_file is None:
            return
        try:
            logins = json.loads(self.logins_file.read_text())
        except (OSError, ValueError):
            self.stderr.write(f"No demo logins in {self.logins_file}: run seed_demo --save FILE first.")
            return
        base_url = f"{self.protocol}://{getattr(self, 'addr', '127.0.0.1')}:{server_port}"
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(demo_logins_text(logins, base_url=base_url)))
