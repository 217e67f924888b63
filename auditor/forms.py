"""The auditor's "verify now" form: optionally, a checkpoint the auditor kept outside the database."""

from __future__ import annotations

import base64
import binascii

from django import forms

from audit.ledger import witness_key_id, witness_name_check, witness_vkey_parse
from audit.outside import MAX_BYTES, checkpoint_note_from
from audit.selectors import witness_taken
from core.crypto import KeyFormatError, public_key_check
from vendors.reports import FINDING_MAX


class VerifyForm(forms.Form):
    checkpoint = forms.CharField(
        label="A checkpoint you kept (optional)",
        required=False,
        strip=False,
        max_length=MAX_BYTES,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Paste the signed note, or the JSON GET /api/v1/ledger/checkpoint gave you "
        "earlier: the ledger must be consistent with it.",
    )

    def clean_checkpoint(self) -> str | None:
        text = self.cleaned_data["checkpoint"].replace("\r\n", "\n")
        if not text.strip():
            return None
        try:
            return checkpoint_note_from(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class WitnessForm(forms.Form):
    """Register a witness: its key as a C2SP verifier key, or its name and raw base64 key."""

    name = forms.CharField(
        label="Name",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="The witness's key name, e.g. <code>witness.example.org/alice</code>. "
        "Leave it empty when you paste a verifier key: the key names itself.",
    )
    key = forms.CharField(
        label="Public key",
        max_length=300,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="A C2SP verifier key (<code>name+keyid+base64</code>, type 0x04 cosignature/v1), or "
        "the base64 of the raw 32-byte Ed25519 public key.",
    )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        name, key = (cleaned.get("name") or "").strip(), (cleaned.get("key") or "").strip()
        if not key:
            return cleaned
        if "+" in key and not _looks_like_base64_key(key):
            try:
                vkey_name, public_raw = witness_vkey_parse(key)
            except ValueError as exc:
                self.add_error("key", str(exc)[:1].upper() + str(exc)[1:] + ".")
                return cleaned
            if name and name != vkey_name:
                self.add_error("name", f"The verifier key names {vkey_name}, not {name}: leave this empty.")
                return cleaned
            name = vkey_name
        else:
            try:
                public_raw = public_key_check(base64.b64decode(key, validate=True))
            except (binascii.Error, ValueError, KeyFormatError):
                self.add_error(
                    "key",
                    "This is neither a verifier key nor the base64 of a raw 32-byte Ed25519 public key.",
                )
                return cleaned
            if not name:
                self.add_error("name", "Give the witness's name: a raw key does not carry one.")
                return cleaned
            try:
                witness_name_check(name)
            except ValueError as exc:
                self.add_error("name", str(exc)[:1].upper() + str(exc)[1:] + ".")
                return cleaned
        try:
            public_key_check(public_raw)
        except KeyFormatError:
            self.add_error("key", "This is not a usable Ed25519 public key.")
            return cleaned
        taken = witness_taken(name=name, public_raw=public_raw)
        if taken == "name":
            self.add_error("name", f"A witness named {name} is already registered.")
        elif taken == "key":
            self.add_error("key", "This public key is already registered to a witness.")
        cleaned["name"], cleaned["public_raw"] = name, public_raw
        cleaned["key_id"] = witness_key_id(name=name, public_raw=public_raw).hex()
        return cleaned


def _looks_like_base64_key(text: str) -> bool:
    """A raw base64 key may hold '+' too: 44 base64 characters decoding to 32 bytes is one."""
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


class CaseOpenForm(forms.Form):
    finding = forms.CharField(
        label="Your finding",
        max_length=FINDING_MAX,
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": FINDING_MAX}),
        help_text="What the vendor did, as you found it, in at most 5000 characters. About the vendor's "
        "conduct only: never about a person.",
        error_messages={"required": "Write what you found."},
    )


class CaseCloseForm(forms.Form):
    outcome = forms.CharField(
        label="Outcome",
        max_length=FINDING_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": FINDING_MAX}),
        help_text="How the case ends (for example: no abuse found; the operator suspended the vendor).",
        error_messages={"required": "Write how the case ends."},
    )
