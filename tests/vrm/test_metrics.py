"""Prometheus metrics at /metrics: off by default, allowed addresses only, no personal content."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import Grant
from consent.scopes import PERSON_SCOPES
from consent.services import grant_authorize
from personal_data.models import ReminderDue, ReminderKind
from tests.vrm.test_settings import _manage, _production_env
from vendors.models import Application

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.VRM_METRICS = True


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return _samples(response.content)


def _not_found_like_an_unknown_url(response: Any, client: Client) -> None:
    unknown = client.get("/no-such-page")
    assert response.status_code == unknown.status_code == 404
    assert response["Content-Type"] == unknown["Content-Type"]
    assert response.content == unknown.content.replace(b"/no-such-page", b"/metrics")


@pytest.mark.django_db
def test_metrics_are_an_unknown_url_when_off(client: Client) -> None:
    _not_found_like_an_unknown_url(client.get("/metrics"), client)


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["10.1.2.3", "2001:db8::1", "not-an-address"])
def test_metrics_are_an_unknown_url_to_an_address_not_allowed(metrics_on: None, address: str) -> None:
    client = Client(REMOTE_ADDR=address)
    _not_found_like_an_unknown_url(client.get("/metrics"), client)


@pytest.mark.django_db
def test_the_allow_list_takes_networks_and_ipv6(settings: Any) -> None:
    settings.VRM_METRICS = True
    settings.VRM_METRICS_ALLOW = ["10.0.0.0/8", "::1"]
    assert Client(REMOTE_ADDR="10.9.8.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


@pytest.mark.django_db
def test_behind_a_proxy_a_forwarded_request_is_judged_by_its_client(settings: Any) -> None:
    settings.VRM_METRICS = True
    settings.VRM_BEHIND_PROXY = True
    # The proxy sits on loopback: what it forwards from outside is not a scrape from loopback.
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.get("/metrics").status_code == 404
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_requests_are_counted_and_timed_by_route_name(metrics_on: None, client: Client) -> None:
    before = _scrape(client)
    assert client.get("/.well-known/oauth-authorization-server").status_code == 200
    assert client.get("/api/v1/ledger/proof/inclusion/999999").status_code in {404, 429}
    after = _scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = {"route": "oauth-metadata", "method": "GET", "status": "200"}
    assert delta("vrm_http_requests_total", **ok) == 1
    assert delta("vrm_http_request_duration_seconds_count", route="oauth-metadata") == 1
    assert delta("vrm_http_request_duration_seconds_bucket", route="oauth-metadata", le="+Inf") == 1
    assert delta("vrm_http_request_duration_seconds_sum", route="oauth-metadata") > 0
    # A path with an id is counted under its pattern's name, never under the path.
    assert delta("vrm_http_request_duration_seconds_count", route="ledger-proof-inclusion") == 1
    labels = {value for (_, pairs) in after for _, value in pairs}
    assert not any("999999" in value for value in labels)


@pytest.mark.django_db
def test_unmatched_paths_and_invented_methods_make_no_series_of_their_own(
    metrics_on: None, client: Client
) -> None:
    client.get("/records/0d7e4b2a-0000-4000-8000-000000000001/nothing")
    client.generic("BREW", "/.well-known/oauth-authorization-server")
    scraped = _scrape(client).keys()
    routes = {dict(pairs).get("route") for name, pairs in scraped if name == "vrm_http_requests_total"}
    methods = {dict(pairs).get("method") for name, pairs in scraped if name == "vrm_http_requests_total"}
    assert "<unmatched>" in routes
    assert not any(route and "0d7e4b2a" in route for route in routes)
    assert "BREW" not in methods and "other" in methods


@pytest.mark.django_db
def test_gauges_count_the_store_when_scraped(
    metrics_on: None, client: Client, alice: User, shop_app: Application, bob: User
) -> None:
    grant = grant_authorize(person=alice, application=shop_app, scopes=PERSON_SCOPES, duration_days=1)
    ended = grant_authorize(person=bob, application=shop_app, scopes=PERSON_SCOPES, duration_days=1)
    Grant.objects.filter(pk=ended.pk).update(ends_at=timezone.now() - dt.timedelta(seconds=1))
    now = timezone.now()
    ReminderDue.objects.create(owner=alice, kind=ReminderKind.REFILL, record_id=grant.pk, due_on=now.date())
    ReminderDue.objects.create(
        owner=alice,
        kind=ReminderKind.WARRANTY,
        record_id=grant.pk,
        due_on=now.date() + dt.timedelta(days=365),
    )
    task = {"args_kwargs": {}, "task_path": "vendors.recalls.x", "backend_name": "default", "run_after": now}
    DBTaskResult.objects.create(**task)
    DBTaskResult.objects.create(**task, status=TaskResultStatus.FAILED)
    DBTaskResult.objects.create(**task, status=TaskResultStatus.SUCCESSFUL)

    scraped = _scrape(client)

    assert scraped[("vrm_grants_live", ())] == 1
    assert scraped[("vrm_tasks_queued", ())] == 1
    assert scraped[("vrm_tasks_failed", ())] == 1
    # The refill due today and the grant ending tomorrow; the warranty is a year away.
    assert scraped[("vrm_reminders_due", ())] == 2
    # Nothing is sealed in a test: every entry (alice's sign-up, the grant) waits for the sealer.
    assert scraped[("vrm_ledger_unsealed_entries", ())] == LedgerEntry.objects.count() >= 1
    assert scraped[("vrm_ledger_oldest_unsealed_age_seconds", ())] >= 0


@pytest.mark.django_db
def test_the_scrape_carries_no_personal_content(
    metrics_on: None, client: Client, alice: User, shop_app: Application
) -> None:
    grant = grant_authorize(person=alice, application=shop_app, scopes=PERSON_SCOPES, duration_days=30)
    alice_client = Client()
    alice_client.force_login(alice)
    alice_client.get(f"/grants/{grant.pk}/")
    Client().get(f"/accounts/signup/confirm/{alice.email}/")
    body = client.get("/metrics").content.decode()
    for secret in (
        alice.email,
        "alice",
        "Alice",
        str(grant.pk),
        grant.pk.hex,
        str(alice.pk),
        shop_app.client_id,
    ):
        assert secret not in body
    assert 'route="' in body


SETUP = "import django; django.setup(); from vrm.metrics import REQUESTS, scrape; "


@pytest.mark.django_db
def test_multiprocess_mode_scrapes_what_every_worker_counted(tmp_path: Path) -> None:
    """Two workers count into PROMETHEUS_MULTIPROC_DIR; a third answers the scrape with both counts."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker processes reach the test database through DATABASE_URL")
    db = connection.settings_dict
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "vrm.settings",
        # The test database, whose tables the gauges read (empty to another connection).
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    for n in (1, 2):
        code = SETUP + f"REQUESTS.labels('home', 'GET', '200').inc({n})"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    code = SETUP + "print(scrape().decode())"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    samples = _samples(run.stdout.encode())
    assert (
        samples[("vrm_http_requests_total", (("method", "GET"), ("route", "home"), ("status", "200")))] == 3
    )
    assert ("vrm_grants_live", ()) in samples


def test_a_bad_allow_list_fails_loudly() -> None:
    result = _manage("check", env=_production_env(VRM_METRICS="True", VRM_METRICS_ALLOW="127.0.0.1,intranet"))
    assert result.returncode != 0 and "VRM_METRICS_ALLOW must list IP addresses" in result.stderr
    assert "'intranet'" in result.stderr
