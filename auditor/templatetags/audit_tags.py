"""Template helpers for the auditor's pages: long ledger ids shown short, in full on demand."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.selectors import alarm_count

register = template.Library()

# Short enough to sit in a table column; long enough to tell ids apart at a glance.
HEAD, TAIL = 8, 4


@register.filter
def short_id(value: object) -> SafeString:
    """Show a long id as its start and end, the whole id in the title (and in any link's target).

    Client ids (40 characters), grant ids (UUIDs) and person pseudonyms (34) would otherwise set
    the width of every table they are in.
    """
    text = str(value)
    if len(text) <= HEAD + TAIL + 2:
        return format_html('<code class="id">{}</code>', text)
    return format_html('<code class="id" title="{}">{}…{}</code>', text, text[:HEAD], text[-TAIL:])


@register.simple_tag
def ledger_alarm_count() -> int:
    """How many alarms witnesses raised: every auditor page shows a banner while there are any."""
    return alarm_count()
