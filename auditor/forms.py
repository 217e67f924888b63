"""The auditor's "verify now" form: optionally, a checkpoint the auditor kept outside the database."""

from __future__ import annotations

from django import forms

from audit.outside import MAX_BYTES, checkpoint_note_from


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
