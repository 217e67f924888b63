"""seed_scale: synthetic people whose records the normal selectors, schema and indexes read."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from devtools.scale import catalogue_build, scale_people, scale_seed
from personal_data import selectors, store
from personal_data.models import PersonKey, Purchase
from personal_data.schemas import PurchaseSchema
from personal_data.validators import gtin_is_valid

pytestmark = pytest.mark.django_db


def test_seed_scale_creates_people_with_readable_records(alice: Any) -> None:
    report = scale_seed(people=7, purchases=30, prefix="t", batch_size=50)

    assert (report.people_created, report.people_skipped, report.purchases_created) == (7, 0, 210)
    people = list(scale_people(prefix="t"))
    assert [p.email for p in people] == [f"t-{n:06d}@example.test" for n in range(7)]
    # Only person 0 can sign in (benchmarks grant as them); nobody else has a password.
    assert all(p.is_person for p in people)
    assert [p.has_usable_password() for p in people] == [True] + [False] * 6
    assert PersonKey.objects.filter(person__in=people, password_wrap__isnull=False).count() == 1
    assert PersonKey.objects.filter(person__in=people).count() == 7
    assert Purchase.objects.filter(owner__in=people).count() == 210
    assert Purchase.objects.filter(owner=alice).count() == 0

    for person in people[:3]:
        documents = selectors.records_for_owner(owner=person, category="purchases")
        assert len(documents) == 30
        for doc in documents:
            # The generator skips the schema on purpose; what it wrote must still pass it unchanged.
            content = store.editable(doc)
            assert store.validate(PurchaseSchema, content) == content
            assert doc["source"] == "import" and doc["source_vendor"] == ""
            assert gtin_is_valid(doc["gtin"])

        # Blind indexes: a shared, non-gift purchase is found by its GTIN; a foreign GTIN is not.
        visible = [d for d in documents if d["shared"] and not d["is_gift"]]
        assert visible
        assert selectors.purchases_owns(owner=person, gtin=visible[0]["gtin"])
        assert selectors.purchases_owns(owner=person, gtin=visible[0]["gtin"].zfill(14))
        assert not selectors.purchases_owns(owner=alice, gtin=visible[0]["gtin"])
        with_lot = [d for d in documents if d["lot"]]
        for doc in with_lot[:3]:
            assert Purchase.objects.filter(
                owner=person, pk=doc["id"], lot_index=store.blind_index("lot", doc["lot"])
            ).exists()


def test_seed_scale_spreads_flags_and_dates() -> None:
    scale_seed(people=10, purchases=100, prefix="spread")
    rows = Purchase.objects.filter(owner__in=scale_people(prefix="spread"))
    total = rows.count()
    assert total == 1000
    assert 0.02 < rows.filter(is_gift=True).count() / total < 0.09
    assert 0.005 < rows.filter(shared=False).count() / total < 0.06
    dates = sorted(rows.values_list("purchased_on", flat=True))
    assert (dates[-1] - dates[0]).days > 600
    assert len({p.gtin for p in catalogue_build(seed="spread")}) == len(catalogue_build(seed="spread"))


def test_rerun_does_not_duplicate_and_extends() -> None:
    scale_seed(people=3, purchases=5, prefix="again")
    second = scale_seed(people=3, purchases=5, prefix="again")
    assert (second.people_created, second.people_skipped, second.purchases_created) == (0, 3, 0)
    third = scale_seed(people=5, purchases=5, prefix="again")
    assert (third.people_created, third.people_skipped) == (2, 3)
    assert scale_people(prefix="again").count() == 5
    assert Purchase.objects.filter(owner__in=scale_people(prefix="again")).count() == 25


def test_command_prints_a_summary() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_scale", people=2, purchases=4, prefix="cmd", stdout=out, stderr=err)
    assert "Created 2 people and 8 purchases (0 people already existed)" in out.getvalue()
    assert "rows/s" in out.getvalue()
    out = io.StringIO()
    call_command("seed_scale", people=2, purchases=4, prefix="cmd", stdout=out, stderr=err)
    assert "Created 0 people and 0 purchases (2 people already existed)" in out.getvalue()


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        scale_seed(people=1, purchases=1, prefix="Bad Prefix!")
