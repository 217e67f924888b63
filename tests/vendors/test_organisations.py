"""Organisations: one name whatever its spelling; verification through the ledger (#13 items 6, 13)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import account_upsert
from audit.models import LedgerEntry
from tests.conftest import PASSWORD
from vendors.models import Membership, Organisation, organisation_name_key
from vendors.services import organisation_create, organisation_verify


def _staff(email: str) -> User:
    return account_upsert(email=email, password=PASSWORD, role=User.Role.VENDOR_STAFF)[0]


@pytest.fixture
def acme(db: Any) -> Organisation:
    return organisation_create(
        staff=_staff("staff@acme.example"),
        name="Acme Shop",
        website="https://acme.example",
        privacy_contact="privacy@acme.example",
    )


LOOK_ALIKES = [
    "acme shop",
    "ACME SHOP",
    "  Acme   Shop ",
    "Acme\tShop",
    "Acme\u00a0Shop",  # no-break space
    "\uff21\uff43\uff4d\uff45 Shop",  # full-width letters
    "Ac\u200bme Shop",  # a zero-width space inside
    "Acme Shop\u200d",  # a zero-width joiner at the end
]


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_the_name_key_ignores_case_spacing_and_unicode_form(name: str) -> None:
    assert organisation_name_key(name) == organisation_name_key("Acme Shop") == "acme shop"


# Default_Ignorable_Code_Point as Unicode's DerivedCoreProperties.txt lists it (Unicode 16.0),
# typed from the file rather than from vendors.models, so the two are checked against each other.
DERIVED_CORE_PROPERTIES = """
00AD; 034F; 061C; 115F..1160; 17B4..17B5; 180B..180D; 180E; 180F; 200B..200F; 202A..202E;
2060..2064; 2065; 2066..206F; 3164; FE00..FE0F; FEFF; FFA0; FFF0..FFF8; 1BCA0..1BCA3;
1D173..1D17A; E0000; E0001; E0002..E001F; E0020..E007F; E0080..E00FF; E0100..E01EF; E01F0..E0FFF
"""


def _default_ignorables() -> list[str]:
    found = []
    for entry in DERIVED_CORE_PROPERTIES.replace("\n", " ").split(";"):
        first, _, last = entry.strip().partition("..")
        found += [chr(c) for c in range(int(first, 16), int(last or first, 16) + 1)]
    return found


IGNORABLES = _default_ignorables()


def test_every_default_ignorable_character_is_ignored_in_the_key() -> None:
    assert len(IGNORABLES) == 4174
    for char in IGNORABLES:
        for name in (f"Acme Shop{char}", f"{char}Acme Shop", f"Acme {char}Shop", f"Acme{char} Shop"):
            assert organisation_name_key(name) == "acme shop", (hex(ord(char)), name)


# What the review of issue #13 named, and the blanks some fonts draw for them.
INVISIBLE_SUFFIXES = [
    "\u034f",  # combining grapheme joiner
    "\ufe00",  # variation selector 1
    "\ufe0f",  # variation selector 16
    "\U000e0100",  # variation selector 17
    "\U000e01ef",  # variation selector 256
    "\u3164",  # Hangul filler
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\uffa0",  # half-width Hangul filler
    "\u00ad",  # soft hyphen
    "\u061c",  # Arabic letter mark
    "\u17b4",  # Khmer vowel inherent AQ
    "\u180b",  # Mongolian free variation selector 1
    "\u2065",  # reserved, ignorable
    "\U0001bca0",  # shorthand format letter overlap
    "\U0001d173",  # musical symbol begin beam
    "\U000e0041",  # tag latin capital A
    "\u2800",  # Braille pattern blank: not ignorable, but blank
]
BLANKS = "\u115f\u1160\u3164\uffa0\u2800"


@pytest.mark.parametrize("suffix", INVISIBLE_SUFFIXES, ids=[hex(ord(s)) for s in INVISIBLE_SUFFIXES])
def test_an_invisible_character_does_not_make_a_name_new(acme: Organisation, suffix: str) -> None:
    names = [f"Acme Shop{suffix}"]
    if suffix in BLANKS:  # drawn as a space, so one between the words is a space too
        names.append(f"Acme{suffix}Shop")
    for name in names:
        with pytest.raises(ValidationError) as error:
            organisation_create(
                staff=_staff(f"staff{len(name)}@impostor.example"),
                name=name,
                website="https://impostor.example",
                privacy_contact="p@impostor.example",
            )
        assert "already registered" in error.value.message_dict["name"][0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Organisation.objects.create(
            name=f"Acme Shop{suffix}", website="https://x.example", privacy_contact="p@x.example"
        )
    assert Organisation.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("\u3164", "Give your organisation's name."),
        ("\u034f\ufe0f\u200b", "Give your organisation's name."),
        ("\u0301\u0302", "Give your organisation's name."),  # combining marks with nothing to mark
        ("\u2800 \u115f", "Give your organisation's name."),
        ("New\x07Shop", "control characters"),
        ("New\x1b[31mShop", "control characters"),
        ("New\nShop", "control characters"),
        ("New\x85Shop", "control characters"),  # C1 next line
    ],
)
def test_an_invisible_or_control_character_name_is_refused(db: Any, name: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        organisation_create(
            staff=_staff("staff@new.example"),
            name=name,
            website="https://new.example",
            privacy_contact="p@new.example",
        )
    assert message in error.value.message_dict["name"][0]
    assert not Organisation.objects.exists()


def test_different_names_keep_different_keys() -> None:
    assert len({organisation_name_key(n) for n in ("Acme Shop", "Acme Shops", "Acme-Shop", "AcmeShop")}) == 4


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_look_alike_name_is_refused_by_the_service(acme: Organisation, name: str) -> None:
    with pytest.raises(ValidationError) as error:
        organisation_create(
            staff=_staff("staff@impostor.example"),
            name=name,
            website="https://impostor.example",
            privacy_contact="p@impostor.example",
        )
    assert "already registered" in error.value.message_dict["name"][0]
    assert Organisation.objects.count() == 1
    assert not Membership.objects.filter(user__email="staff@impostor.example").exists()


@pytest.mark.parametrize("name", ["ACME  shop", "\uff21\uff43\uff4d\uff45 Shop"])
def test_the_database_refuses_a_look_alike_name(acme: Organisation, name: str) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Organisation.objects.create(name=name, website="https://x.example", privacy_contact="p@x.example")
    # Renaming an existing organisation onto the name is refused too.
    other = Organisation.objects.create(
        name="Other", website="https://o.example", privacy_contact="p@o.example"
    )
    other.name = name
    with pytest.raises(IntegrityError), transaction.atomic():
        other.save()


def test_the_vendor_portal_form_says_the_name_is_taken(acme: Organisation) -> None:
    client = Client()
    client.force_login(_staff("staff@impostor.example"))
    response = client.post(
        reverse("vendors:organisation_create"),
        {
            "name": " ACME  shop",
            "website": "https://impostor.example",
            "privacy_contact": "p@impostor.example",
        },
    )
    assert response.status_code == 200
    assert "already registered" in response.content.decode()
    assert Organisation.objects.count() == 1


def test_the_admin_neither_adds_nor_renames_an_organisation(operator: User, acme: Organisation) -> None:
    # Names enter only through organisation_create, which refuses a taken one; the admin shows them.
    client = Client()
    client.force_login(operator)
    fields = {
        "name": "acme SHOP",
        "website": "https://impostor.example",
        "privacy_contact": "p@impostor.example",
        "description": "",
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
    }
    assert client.post("/admin/vendors/organisation/add/", fields).status_code == 403
    client.post(f"/admin/vendors/organisation/{acme.pk}/change/", {**fields, "name": "Acme Shop Ltd"})
    acme.refresh_from_db()
    assert (acme.name, acme.website) == ("Acme Shop", "https://acme.example")
    assert Organisation.objects.count() == 1


# Verification goes through organisation_verify and the ledger (#13 item 13).


def test_verification_writes_a_ledger_entry(acme: Organisation, operator: User) -> None:
    organisation_verify(organisation=acme, by=operator, verified=True)
    acme.refresh_from_db()
    assert acme.verified
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.ORG_VERIFIED)
    assert entry.actor_type == LedgerEntry.ActorType.OPERATOR and entry.actor_id == str(operator.pk)
    assert entry.record_ids == [str(acme.pk)] and entry.subject == ""

    organisation_verify(organisation=acme, by=operator, verified=True)  # already verified: no entry
    assert LedgerEntry.objects.filter(kind__startswith="vendor.org_").count() == 1
    organisation_verify(organisation=acme, by=operator, verified=False)
    acme.refresh_from_db()
    assert not acme.verified
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.ORG_UNVERIFIED)
    assert entry.actor_id == str(operator.pk) and entry.record_ids == [str(acme.pk)]


def test_only_an_operator_verifies(acme: Organisation, vendor_staff: User, alice: User) -> None:
    for user in (vendor_staff, alice):
        with pytest.raises(PermissionDenied):
            organisation_verify(organisation=acme, by=user, verified=True)
    acme.refresh_from_db()
    assert not acme.verified and not LedgerEntry.objects.filter(kind__startswith="vendor.org_").exists()


def test_the_admin_actions_verify_and_unverify_through_the_ledger(operator: User, acme: Organisation) -> None:
    other = Organisation.objects.create(
        name="Other", website="https://o.example", privacy_contact="p@o.example"
    )
    client = Client()
    client.force_login(operator)
    selected = [str(acme.pk), str(other.pk)]
    client.post("/admin/vendors/organisation/", {"action": "mark_verified", "_selected_action": selected})
    assert set(Organisation.objects.values_list("verified", flat=True)) == {True}
    verified = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ORG_VERIFIED)
    assert sorted(e.record_ids[0] for e in verified) == sorted(selected)
    assert {e.actor_id for e in verified} == {str(operator.pk)}
    client.post(
        "/admin/vendors/organisation/", {"action": "mark_unverified", "_selected_action": [str(acme.pk)]}
    )
    acme.refresh_from_db()
    assert not acme.verified
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.ORG_UNVERIFIED).record_ids == [str(acme.pk)]


def test_the_admin_change_form_cannot_set_verified(operator: User, acme: Organisation) -> None:
    client = Client()
    client.force_login(operator)
    client.post(
        f"/admin/vendors/organisation/{acme.pk}/change/",
        {
            "name": "Acme Shop",
            "website": "https://acme.example",
            "privacy_contact": "privacy@acme.example",
            "description": "",
            "verified": "on",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )
    acme.refresh_from_db()
    assert not acme.verified


# The migration that makes names unique keeps every organisation.


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_duplicates_unverified_and_deletes_nothing() -> None:
    import datetime as dt

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    before = [("vendors", "0006_organisation_name_key")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldOrganisation = old_apps.get_model("vendors", "Organisation")
    t0 = timezone.now() - dt.timedelta(days=30)

    def make(name: str, days: int, verified: bool = False) -> str:
        org = OldOrganisation.objects.create(
            name=name,
            website="https://x.example",
            privacy_contact="p@x.example",
            verified=verified,
            created_at=t0 + dt.timedelta(days=days),
        )
        return str(org.pk)

    impostor_first = make("ACME shop", 0)  # oldest, but not verified
    real = make("Acme Shop", 1, verified=True)
    impostor_later = make("acme  Shop", 2, verified=True)
    # A name that a suffixed duplicate would otherwise take.
    squatter = make("Acme Shop (duplicate 2)", 3)
    other = make("Other", 4)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("vendors"))

    orgs = {str(o.pk): o for o in Organisation.objects.all()}
    assert set(orgs) == {impostor_first, real, impostor_later, squatter, other}  # nothing deleted
    assert orgs[real].name == "Acme Shop" and orgs[real].verified  # the verified one keeps it
    assert orgs[other].name == "Other" and orgs[squatter].name == "Acme Shop (duplicate 2)"
    # Verified ones first, then the oldest; "(duplicate 2)" is taken, so numbering goes on.
    assert orgs[impostor_later].name == "acme  Shop (duplicate 3)"
    assert orgs[impostor_first].name == "ACME shop (duplicate 4)"
    assert not orgs[impostor_first].verified and not orgs[impostor_later].verified
    assert all(o.name_key == organisation_name_key(o.name) for o in orgs.values())
    with pytest.raises(IntegrityError), transaction.atomic():
        Organisation.objects.create(
            name="acme shop", website="https://y.example", privacy_contact="p@y.example"
        )


@pytest.mark.django_db(transaction=True)
def test_the_ignorables_migration_recomputes_keys_and_renames_new_duplicates() -> None:
    import datetime as dt
    import importlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    old_key = importlib.import_module("vendors.migrations.0007_organisation_name_key_fill").name_key
    before = [("vendors", "0008_organisation_name_unique")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    OldOrganisation = executor.loader.project_state(before).apps.get_model("vendors", "Organisation")
    t0 = timezone.now() - dt.timedelta(days=30)

    def make(name: str, days: int, verified: bool = False) -> str:
        org = OldOrganisation.objects.create(
            name=name,
            name_key=old_key(name),
            website="https://x.example",
            privacy_contact="p@x.example",
            verified=verified,
            created_at=t0 + dt.timedelta(days=days),
        )
        return str(org.pk)

    plain = make("Acme Shop", 0)  # oldest, holds the key "acme shop", not verified
    joiner = make("Acme Shop\u034f", 1, verified=True)  # verified: takes "acme shop" from it
    filler = make("Acme\u3164Shop", 2, verified=True)
    selector = make("Other\ufe0f", 3)
    other = make("Other", 4, verified=True)
    alone = make("Solo\U000e0100", 5, verified=True)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("vendors"))

    orgs = {str(o.pk): o for o in Organisation.objects.all()}
    assert set(orgs) == {plain, joiner, filler, selector, other, alone}  # nothing deleted
    assert (orgs[joiner].name, orgs[joiner].name_key, orgs[joiner].verified) == (
        "Acme Shop\u034f",
        "acme shop",
        True,
    )
    assert orgs[filler].name == "Acme\u3164Shop (duplicate 2)" and not orgs[filler].verified
    assert orgs[plain].name == "Acme Shop (duplicate 3)" and not orgs[plain].verified
    assert orgs[other].name == "Other" and orgs[selector].name == "Other\ufe0f (duplicate 2)"
    assert orgs[alone].name == "Solo\U000e0100" and orgs[alone].verified
    assert all(o.name_key == organisation_name_key(o.name) for o in orgs.values())


def test_the_migration_keeps_a_copy_of_todays_name_key() -> None:
    import importlib

    copy = importlib.import_module("vendors.migrations.0009_organisation_name_key_ignorables").name_key
    names = [*LOOK_ALIKES, *(f"Acme{c}Shop" for c in IGNORABLES[::7]), "Ｏｔｈｅｒ\u2800", "ﬁne \u0301"]
    assert [copy(n) for n in names] == [organisation_name_key(n) for n in names]
