"""Two-step sign-in in tests: an authenticator's codes computed from the secret, as an app would."""

from __future__ import annotations

import base64
import time

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.twofactor import totp_setup
from portal.twofactor import two_factor_enable


def code_for(device: TOTPDevice, *, at: float | None = None) -> str:
    """The code the app shows at `at` (now by default)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = time.time() if at is None else at
    return f"{totp.token():0{device.digits}d}"


def code_from_secret(secret: str, *, at: float | None = None) -> str:
    """The code for a secret as the setup page shows it (base32 in groups), RFC 6238 defaults."""
    text = secret.replace(" ", "")
    key = base64.b32decode(text + "=" * (-len(text) % 8))
    totp = TOTP(key, 30, 0, 6)
    totp.time = time.time() if at is None else at
    return f"{totp.token():06d}"


def two_factor_on(user: User) -> tuple[TOTPDevice, list[str]]:
    """Turn it on through the service, with the current code; return the device and backup codes."""
    device = totp_setup(user=user)
    codes = two_factor_enable(user=user, device=device, code=code_for(device))
    assert codes is not None
    device.refresh_from_db()
    return device, codes
