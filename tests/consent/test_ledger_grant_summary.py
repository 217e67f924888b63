"""The auditor's grant summary of a grant made through the real consent and token flow.

A person creates a grant (the grant.created entry is theirs); the vendor is the client that
then takes a token under it. The auditor's grants page and its vendor filter rely on that.
"""

from __future__ import annotations

from typing import Any

from audit.models import LedgerGrant
from audit.summaries import summaries_differences
from auditor.selectors import grant_list
from consent.models import Grant
from tests.consent.conftest import Flow


def test_the_vendor_of_a_grant_is_the_client_that_took_its_first_token(flow: Flow, shop_app: Any) -> None:
    flow.tokens()
    grant = Grant.objects.get(application=shop_app)
    summary = LedgerGrant.objects.get(grant_id=str(grant.pk))
    assert summary.vendor == shop_app.client_id
    assert summary.end_kind == ""
    assert [row["grant_id"] for row in grant_list(vendors=[shop_app.client_id])] == [str(grant.pk)]
    assert summaries_differences() == []


def test_a_revocation_through_the_service_shows_in_the_summary(flow: Flow, shop_app: Any, alice: Any) -> None:
    from consent.services import grant_revoke

    flow.tokens()
    grant = Grant.objects.get(application=shop_app)
    grant_revoke(grant=grant, by=alice)
    summary = LedgerGrant.objects.get(grant_id=str(grant.pk))
    assert summary.end_kind == "grant.revoked"
    assert summary.ended_at is not None
    assert [row["status"] for row in grant_list(status="revoked")] == ["revoked"]
    assert summaries_differences() == []
