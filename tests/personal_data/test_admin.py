"""Operators can see that records exist in the admin, never what they say."""

from __future__ import annotations

from typing import Any

from personal_data.services import preferences_update, record_create
from tests.conftest import purchase_data


def test_admin_shows_metadata_only(client: Any, operator: Any, alice: Any) -> None:
    record = record_create(owner=alice, category="purchases", data=purchase_data())
    preferences_update(owner=alice, data={"allergies": ["peanuts"]})
    client.force_login(operator)
    pages = [
        "/admin/personal_data/purchase/",
        f"/admin/personal_data/purchase/{record['id']}/change/",
        "/admin/personal_data/preferences/",
        "/admin/personal_data/personkey/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        for secret in ("Crunchy Peanut Butter", "Green Grocer", "peanuts", "L4471", "5012345001234"):
            assert secret not in body, (path, secret)
    assert client.post(f"/admin/personal_data/purchase/{record['id']}/change/", {}).status_code == 403
