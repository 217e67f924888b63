from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from audit.witnessing import (
    WitnessError,
    default_state_path,
    key_generate,
    key_load,
    log_key_parse,
    name_check,
    witness_run,
)


class Command(BaseCommand):
    help = (
        "As an auditor's witness: fetch the log's newest checkpoint, prove it consistent with the "
        "last one this witness cosigned, and post a cosignature (C2SP tlog-cosignature). A "
        "truncated, forked or rewritten log is refused: exit 1, saying why, after posting the last "
        "cosigned checkpoint as evidence. Exit 2 when the witness cannot do its work. "
        "With --generate-key, write a new witness key and print the vkey to register."
    )
    # A witness needs none of the server's keys or its database: an auditor runs it anywhere.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name", required=True, help="the witness's key name, e.g. witness.example.org/alice"
        )
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument(
            "--key", type=Path, metavar="FILE", help="the witness's Ed25519 private key (PEM)"
        )
        action.add_argument(
            "--generate-key", type=Path, metavar="FILE", help="write a new key to FILE (never over a file)"
        )
        parser.add_argument("--url", help="the log's base URL (default: VRM_ISSUER)")
        parser.add_argument(
            "--state",
            type=Path,
            metavar="FILE",
            help="what the witness remembers between runs (default var/witness/<name, / as _>.json)",
        )
        parser.add_argument(
            "--log-key",
            metavar="VKEY_OR_B64",
            help="the log's public key, pinned on the first run only "
            "(default: trust the first key the log publishes)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(**options)
        except WitnessError as exc:
            self.stderr.write(str(exc))
            raise SystemExit(2) from None

    def _handle(
        self,
        *,
        name: str,
        key: Path | None,
        generate_key: Path | None,
        url: str | None,
        state: Path | None,
        log_key: str | None,
        **options: Any,
    ) -> None:
        if generate_key is not None:
            vkey = key_generate(path=generate_key, name=name)
            self.stdout.write(f"wrote {generate_key}; register this key in the auditor portal:\n{vkey}")
            return
        if key is None:  # argparse requires one of the two; call_command may not
            raise WitnessError("give --key FILE, or --generate-key FILE to make one")
        outcome = witness_run(
            key=key_load(path=key),
            name=name_check(name),
            url=url or settings.VRM_ISSUER,
            state_path=state or default_state_path(base=settings.BASE_DIR, name=name),
            log_key=None if log_key is None else log_key_parse(log_key),
        )
        if outcome.code:
            self.stderr.write(outcome.message)
            if outcome.evidence:
                self.stderr.write(outcome.evidence)
            raise SystemExit(outcome.code)
        self.stdout.write(outcome.message)
