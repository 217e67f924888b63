"""Two-step sign-in: a TOTP authenticator (RFC 6238) and one-time backup codes, via django-otp.

django-otp does the codes: TOTP with one step of tolerance either way, and replay protection
(a code, once accepted, is refused again: `last_t`), and its per-device throttle. Backup codes
are django-otp static tokens stored as hashes, never as the codes themselves.

A password alone never signs an account with a confirmed device in: the login keeps a pending
sign-in in the session (who, how, until when) and the second step finishes it. The person's
store key for that step is kept by portal/keysession.py, sealed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

BACKUP_CODE_COUNT = 10
# 12 symbols of 31 (no 0/o, 1/l/i): about 59 random bits each; shown in groups of four.
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_BACKUP_LEN = 12
# How long the second step waits for its code after the password was right.
PENDING_SECONDS = 5 * 60
PENDING = "_vrm_two_factor_pending"
DEVICE_NAME = "authenticator"


def totp_device(user: User, *, confirmed: bool = True) -> TOTPDevice | None:
    device: TOTPDevice | None = TOTPDevice.objects.filter(user=user, confirmed=confirmed).first()
    return device


def two_factor_enabled(user: User) -> bool:
    """Whether signing in as this account needs a code after the password."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret as an authenticator app takes it by hand: base32, in groups of four."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@transaction.atomic
def totp_setup(*, user: User) -> TOTPDevice:
    """Start (or start again) setting up an authenticator: a new secret, not yet in use."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device: TOTPDevice = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def _normalise(code: str) -> str:
    return "".join(c for c in code.lower() if c.isascii() and c.isalnum())


def _backup_hash(user: User, code: str) -> str:
    # StaticToken.token holds 16 characters: 64 bits of SHA-256 over ~59 random bits, bound to
    # the account so one hash cannot be tried against every account's codes at once.
    return hashlib.sha256(f"vrm/backup-code/v1|{user.pk}|{_normalise(code)}".encode()).hexdigest()[:16]


def _backup_code_new() -> str:
    raw = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(_BACKUP_LEN))
    return "-".join(raw[i : i + 4] for i in range(0, _BACKUP_LEN, 4))


@transaction.atomic
def backup_codes_issue(*, user: User) -> list[str]:
    """Replace the account's backup codes with new ones; return them (stored only as hashes)."""
    device, _ = StaticDevice.objects.get_or_create(user=user, defaults={"name": "backup codes"})
    device.confirmed = True
    device.save()
    device.token_set.all().delete()
    codes = [_backup_code_new() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=_backup_hash(user, c)) for c in codes])
    return codes


@transaction.atomic
def totp_confirm(*, device: TOTPDevice, code: str) -> bool:
    """Put a set-up authenticator in use if `code` is its current one; replace any earlier one."""
    if not _totp_verify(device, code):
        return False
    TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


def _totp_verify(device: TOTPDevice, code: str) -> bool:
    digits = code.replace(" ", "").replace("-", "")
    return (
        digits.isascii() and digits.isdigit() and len(digits) == device.digits and device.verify_token(digits)
    )


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    backup: bool = False  # a backup code was used (and is now spent)
    wait: int = 0  # django-otp's throttle refused to check: seconds to wait


def code_wait(device: TOTPDevice) -> int:
    """Seconds django-otp still refuses to check this device's codes after wrong ones (0: none)."""
    allowed, details = device.verify_is_allowed()
    if allowed:
        return 0
    until = (details or {}).get("locked_until")
    return max(1, int((until - timezone.now()).total_seconds()) + 1) if until else 1


def code_verify(*, user: User, code: str) -> CodeCheck:
    """Check a code from the authenticator, or else one backup code (spent when it matches).

    A code the authenticator already gave once is refused (django-otp keeps the last time step
    accepted), and after wrong codes django-otp refuses to check for a growing while.
    """
    device = totp_device(user)
    if device is None:
        return CodeCheck(ok=False)
    if wait := code_wait(device):
        return CodeCheck(ok=False, wait=wait)
    with transaction.atomic():
        if _totp_verify(device, code):
            return CodeCheck(ok=True)
        statics = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if statics is not None and _normalise(code) and statics.verify_token(_backup_hash(user, code)):
            return CodeCheck(ok=True, backup=True)
    return CodeCheck(ok=False)


@transaction.atomic
def two_factor_remove(*, user: User) -> bool:
    """Remove the account's authenticator and backup codes; return whether it had any."""
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    statics, _ = StaticDevice.objects.filter(user=user).delete()
    return bool(removed or statics)


# The sign-in between its two steps.


def pending_start(request: HttpRequest, *, user: User, backend: str, next_url: str) -> None:
    """Remember, for PENDING_SECONDS, that this session gave the account's right password.

    A new session key first: whoever planted a session id on this browser gets nothing.
    """
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": str(user.pk),
        "backend": backend,
        "next": next_url,
        "at": timezone.now().timestamp(),
    }


@dataclass(frozen=True)
class Pending:
    user: User
    backend: str
    next_url: str


def pending_read(request: HttpRequest) -> Pending | None:
    """The sign-in this session started, unless it is too old or the account can no longer sign in."""
    state = request.session.get(PENDING)
    if not isinstance(state, dict):
        return None
    age = timezone.now().timestamp() - float(state.get("at", 0))
    if not 0 <= age < PENDING_SECONDS or state.get("backend") not in settings.AUTHENTICATION_BACKENDS:
        return None
    user_id = state.get("user")
    if not isinstance(user_id, str):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not two_factor_enabled(user):
        return None
    return Pending(user=user, backend=str(state["backend"]), next_url=str(state.get("next") or ""))


def pending_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING, None)
