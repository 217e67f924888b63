# Recompute every organisation's name key now that it also drops Unicode's default-ignorable
# code points (combining grapheme joiner, variation selectors, Hangul fillers, ...) and counts
# blank-looking characters as spaces: "Acme Shop\u034f" was a second "Acme Shop" on screen.
#
# As in 0007, nothing is deleted: of organisations whose names are now one name, the verified
# one keeps it, else the oldest; the others gain a suffix ("Acme Shop (duplicate 2)") and are
# left unverified for the operator to look at again. The key function is a copy of
# vendors.models.organisation_name_key as it was when this migration was written (a migration
# never imports app code).

import re
import unicodedata

from django.db import migrations

NAME_MAX_LENGTH = 120
NAME_KEY_MAX_LENGTH = 255
DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
BLANKS = re.compile("[\u115f\u1160\u3164\uffa0\u2800]")
# Never a key: every key has its zero-width spaces dropped. Holds a key while keys move.
PARKED = "\u200b"


def drop_invisible(text):
    text = BLANKS.sub(" ", text)
    return DEFAULT_IGNORABLE.sub("", "".join(c for c in text if unicodedata.category(c) != "Cf"))


def name_key(name):
    text = unicodedata.normalize("NFKC", name)
    text = unicodedata.normalize("NFKC", drop_invisible(text).casefold())
    text = drop_invisible(text)
    return " ".join(text.split())[:NAME_KEY_MAX_LENGTH]


def recompute_keys(apps, schema_editor):
    Organisation = apps.get_model("vendors", "Organisation")
    groups = {}
    for organisation in Organisation.objects.order_by("-verified", "created_at", "pk"):
        groups.setdefault(name_key(organisation.name), []).append(organisation)
    taken = set(groups)
    changes = []  # (organisation, fields to save)
    for key, organisations in groups.items():
        first, *duplicates = organisations
        if first.name_key != key:
            first.name_key = key
            changes.append((first, ["name_key"]))
        number = 1
        for organisation in duplicates:
            while True:
                number += 1
                suffix = f" (duplicate {number})"
                name = organisation.name.strip()[: NAME_MAX_LENGTH - len(suffix)] + suffix
                if name_key(name) not in taken:
                    break
            taken.add(name_key(name))
            organisation.name, organisation.name_key = name, name_key(name)
            organisation.verified = False
            changes.append((organisation, ["name", "name_key", "verified"]))
    # Keys are unique at every moment: park each key that moves, then set the new ones, so an
    # organisation taking a key another still holds does not trip the constraint.
    for organisation, _fields in changes:
        Organisation.objects.filter(pk=organisation.pk).update(name_key=f"{PARKED}{organisation.pk}")
    for organisation, fields in changes:
        organisation.save(update_fields=fields)


class Migration(migrations.Migration):

    dependencies = [
        ('vendors', '0008_organisation_name_unique'),
    ]

    operations = [
        migrations.RunPython(recompute_keys, migrations.RunPython.noop),
    ]
