from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.keyfiles import backup_path, key_file_replace, key_file_write, staging_path
from audit.services import SigningKeyUnknown, signing_key_rotate
from core.crypto import KeyFormatError, SigningKey, possession_statement
from core.keys import signing_key


class Command(BaseCommand):
    help = (
        "Start signing ledger checkpoints and consent receipts with a new Ed25519 key. The old "
        "key signs the handover to the new one, the new key proves possession, and the rotation is "
        "sealed under the old key; old checkpoints and receipts keep verifying under "
        "their key id. The new private key replaces the key file (the old one is kept beside it "
        "as a backup), or goes to --out FILE when the key comes from the environment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out",
            type=Path,
            metavar="FILE",
            help="write the new private key to FILE (created, owner-only) instead of replacing the key file",
        )

    def handle(self, *args: Any, out: Path | None, **options: Any) -> None:
        key_path: Path | None = settings.VRM_LEDGER_SIGNING_KEY_PATH
        if out is None and key_path is None:
            raise CommandError(
                "The signing key comes from the VRM_LEDGER_SIGNING_KEY environment variable, which "
                "this command cannot change. Run it again with --out FILE, then set "
                "VRM_LEDGER_SIGNING_KEY_FILE=FILE (or the variable to its content) and restart."
            )
        current = signing_key()
        if out is not None:
            target = out
        else:
            assert key_path is not None  # noqa: S101 (refused above otherwise)
            target = staging_path(key_path)
            try:
                on_disk = SigningKey.parse(key_path.read_text())
            except (OSError, KeyFormatError) as exc:
                raise CommandError(f"Cannot read the key file {key_path}: {exc}") from None
            if on_disk.public_raw() != current.public_raw():
                raise CommandError(f"{key_path} no longer holds the key this process was started with.")
        new = SigningKey.generate()
        try:
            key_file_write(target, new.private_pem())
        except OSError as exc:
            raise CommandError(f"Cannot write the new key to {target}: {exc}") from None
        try:
            rotation = signing_key_rotate(
                public_raw=new.public_raw(),
                possession_signature=new.sign(
                    possession_statement(old_public=current.public_raw(), new_public=new.public_raw())
                ),
            )
        except (SigningKeyUnknown, ValueError, RuntimeError) as exc:
            target.unlink()
            raise CommandError(f"The key was not rotated: {exc}") from None
        except BaseException:
            target.unlink()
            raise
        if out is None and key_path is not None:
            backup = backup_path(key_path, rotation.old_kid)
            key_file_replace(key_path, target, backup)
            where = f"The new key is in {key_path}; the old one is kept in {backup}."
        else:
            where = (
                f"The new private key is in {out}. Configure it (VRM_LEDGER_SIGNING_KEY_FILE={out}) "
                "wherever the old key is configured."
            )
        self.stdout.write(
            f"Signing key rotated: old kid {rotation.old_kid}, new kid {rotation.new_kid}. The old "
            f"key signed the handover; the rotation is sealed under it in the checkpoint at tree size "
            f"{rotation.handover.tree_size}.\n{where}\nRestart the web processes and seal_ledger "
            "so they sign with the new key; until then they keep signing with the old one, which "
            "stays valid."
        )
