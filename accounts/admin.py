"""No two-step secrets in the admin: django-otp's device pages are removed.

Its TOTP page would show (or let an operator set) the secret an authenticator app computes codes
from, and its backup-code page the stored codes. An operator removes a lost authenticator only
through the account action "Turn off two-step sign-in" (portal/operator.py), with a ledger entry.
"""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

for device in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(device):
        admin.site.unregister(device)
