import base64
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from audit.outside import checkpoint_source_read
from audit.selectors import checkpoint_latest
from audit.services import ledger_verify


class Command(BaseCommand):
    help = (
        "Recompute every ledger leaf and checkpoint root from the entries and check every "
        "signature under the key its key id names. Exit 0 if intact; otherwise print the first bad "
        "entry or checkpoint and exit 1. An empty ledger is not intact: it exits 1 with 'nothing "
        "to verify'. Gaps in entry ids are printed as warnings. Every witness cosignature is "
        "checked against the ledger's tree, and any alarm a witness raised fails the run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            metavar="FILE_OR_URL",
            help="a checkpoint kept outside the database (the signed note, or the JSON "
            "GET /api/v1/ledger/checkpoint serves, in a file or at an http(s) URL): prove the "
            "ledger consistent with it (RFC 9162)",
        )
        parser.add_argument(
            "--witnesses",
            metavar="N",
            type=int,
            default=0,
            help="require a checkpoint cosigned (validly) by at least N distinct non-retired witnesses",
        )

    def handle(self, *args: Any, checkpoint: str | None, witnesses: int, **options: Any) -> None:
        if witnesses < 0:
            self.stderr.write("ledger not verified: --witnesses must be 0 or more")
            raise SystemExit(1)
        outside = None
        if checkpoint is not None:
            try:
                outside = checkpoint_source_read(checkpoint)
            except ValueError as exc:
                self.stderr.write(f"ledger not verified: the checkpoint given cannot be used: {exc}")
                raise SystemExit(1) from None
        newest = checkpoint_latest()
        total = newest.tree_size if newest else 0
        with tqdm(total=total, unit="entry", file=self.stderr, delay=2.0) as bar:
            result = ledger_verify(
                on_progress=bar.update,
                outside_checkpoint=outside,
                witnesses=witnesses,
                on_stage=lambda stage: bar.write(f"{stage}…", file=self.stderr),
            )
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        for alarm in result.alarms:
            self.stderr.write(alarm)
        if result.first_problem is not None:
            self.stderr.write(f"ledger NOT intact: {result.first_problem}")
            raise SystemExit(1)
        if result.empty:
            # Deleting every entry, leaf and checkpoint would look like this too: never "intact".
            self.stderr.write(
                f"nothing to verify: no entry has been sealed yet ({result.unsealed} awaiting the sealer)"
            )
            raise SystemExit(1)
        self.stdout.write(f"ledger intact: {result.entries} entries, {result.checkpoints} checkpoints")
        if result.root_hash is not None:
            root = base64.b64encode(result.root_hash).decode()
            self.stdout.write(f"newest checkpoint: tree size {result.tree_size}, root {root}")
        for kid, key_id, count in result.signers:
            self.stdout.write(f"signed under key {key_id} (kid {kid}): {count} checkpoints")
        self.stdout.write(f"witnessed: {result.witnessed_sentence}")
        self.stdout.write(f"took {result.seconds:.2f} s")
        if result.outside_size is not None:
            self.stdout.write(
                f"consistent with the checkpoint given (tree size {result.outside_size}; "
                f"the ledger's tree has {result.entries})"
            )
        if result.unsealed:
            self.stdout.write(f"{result.unsealed} entries are not sealed yet and were not checked")
