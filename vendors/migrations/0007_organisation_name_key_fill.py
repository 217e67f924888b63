# Fill every organisation's name key; rename the later of two organisations whose names differ
# only in case, spacing or Unicode form, and leave the renamed ones unverified.
#
# Nothing is deleted: a duplicate keeps its apps, members, recalls and grants, and only its name
# gains a suffix ("Acme Shop (duplicate 2)") that the operator can change in the admin. The
# organisation that keeps the name is the verified one, else the oldest. The key function is a
# copy of vendors.models.organisation_name_key as it was when this migration was written
# (a migration never imports app code).

import unicodedata

from django.db import migrations

NAME_MAX_LENGTH = 120
NAME_KEY_MAX_LENGTH = 255


def name_key(name):
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())[:NAME_KEY_MAX_LENGTH]


def fill_keys(apps, schema_editor):
    Organisation = apps.get_model("vendors", "Organisation")
    groups = {}
    for organisation in Organisation.objects.order_by("-verified", "created_at", "pk"):
        groups.setdefault(name_key(organisation.name), []).append(organisation)
    taken = set(groups)
    for key, organisations in groups.items():
        first, *duplicates = organisations
        first.name_key = key
        first.save(update_fields=["name_key"])
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
            # A name nobody verified: people are told so until the operator looks again.
            organisation.verified = False
            organisation.save(update_fields=["name", "name_key", "verified"])


class Migration(migrations.Migration):

    dependencies = [
        ('vendors', '0006_organisation_name_key'),
    ]

    operations = [
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
    ]
