"""Schemathesis against the served /api/schema/, with a full-scope token for a person with data
(and an organisation token with recalls:publish and intents:read for the recall and intent
endpoints, with a few open intents it may see and its offers on two of them).

Every generated request must get no 5xx and a response the schema describes: its status code,
content type, body and headers. Each operation is fuzzed with valid and invalid input (and, for
record ids, with ids of real records), plus the schema's own examples.
`VRM_SCHEMATHESIS_EXAMPLES` sets the examples per operation and mode (default 10, derandomized,
for CI); a long exploration is e.g. `VRM_SCHEMATHESIS_EXAMPLES=100`.

The schemathesis pytest plugin's lazy loader does not run under pytest 9 (`Function._nodeid`),
so the operations are driven here with plain Hypothesis over schemathesis' strategies.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consent.models import TermsChoice
from consent.scopes import PERSON_SCOPES
from devtools.records import demo_records_seed
from personal_data.selectors import records_for_owner
from tests.intents_helpers import publish, subscribe
from tests.vendors_api.conftest import authorize, issue_token
from tests.vendors_api.test_matrix import offer_data, organisation_token
from vendors.intents import offer_create
from vendors.messages import message_send
from vendors.models import Application, Organisation

EXAMPLES = int(os.environ.get("VRM_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # report the first failure, unshrunk
)


def _strategies(
    operation: Any,
    record_ids: dict[str, list[str]],
    intents: list[dict[str, str]] = (),  # type: ignore[assignment]
) -> list[tuple[str, Any]]:
    strategies = [("positive", operation.as_strategy(GenerationMode.POSITIVE))]
    if operation.query or operation.headers or operation.body:
        strategies.append(("negative", operation.as_strategy(GenerationMode.NEGATIVE)))
    category = operation.path.split("/")[3]
    parameter = "message_id" if category == "messages" else "record_id"
    if f"{{{parameter}}}" in operation.path and record_ids.get(category):
        real = st.one_of(
            *(operation.as_strategy(path_parameters={parameter: i}) for i in record_ids[category][:10])
        )
        strategies.append(("real ids", real))
    if "{intent_id}" in operation.path and intents:
        wanted = [{k: v for k, v in ids.items() if "{" + k + "}" in operation.path} for ids in intents]
        strategies.append(
            ("real ids", st.one_of(*(operation.as_strategy(path_parameters=p) for p in wanted)))
        )
    examples = operation.schema.get_strategies_from_examples(operation)
    if examples:
        strategies.append(("examples", st.one_of(*examples)))
    return strategies


def _routes(response: Any) -> bool:
    """Whether the request's path reaches an endpoint (negative path parameters may not)."""
    try:
        resolve(unquote(urlsplit(response.request.url).path))
    except Resolver404:
        return False
    return True


@pytest.fixture
def _keep_the_test_connection() -> Iterator[None]:
    """Keep the test's transaction open across WSGI requests, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("_keep_the_test_connection")
def test_api_conforms_to_its_schema(alice: Any, shop_app: Any, throttle_rates: Any) -> None:
    throttle_rates()  # a fast run is not a flood; 429 has its own test
    demo_records_seed(person=alice, scale="full")
    # Made under alice's terms, so /agreement answers with a record.
    TermsChoice.objects.create(person=alice, proffered=["sd-base"])
    shop_app.organisation.accepted_terms = ["sd-base"]
    shop_app.organisation.save(update_fields=["accepted_terms"])
    grant = authorize(alice, shop_app, PERSON_SCOPES, include_gifts=True, duration_days=90)
    person = {"Authorization": f"Bearer {issue_token(grant)}"}
    org_token = organisation_token("Acme Foods", scope="recalls:publish intents:read")
    organisation = {"Authorization": f"Bearer {org_token}"}
    # Open intents the organisation's filters match, two of them with its offer.
    # (Services, not the test client: its requests reconnect the signals that close connections.)
    subscribe(Organisation.objects.get(name="Acme Foods"))
    org_app = Application.objects.get(organisation__name="Acme Foods")
    published = [publish(alice, title=f"Coat {n}") for n in range(3)]
    offers = [offer_create(application=org_app, intent=i, data=offer_data()) for i in published[:2]]
    intents = [
        {"intent_id": str(intent.pk), "offer_id": str(offers[min(n, 1) if n < 2 else 0].pk)}
        for n, intent in enumerate(published)
    ]
    record_ids = {
        category: [r["id"] for r in records_for_owner(owner=alice, category=category, shared=True)]
        for category in ("purchases", "closet", "appliances", "prescriptions")
    }
    # Two messages sent under the grant; the fuzzing's own posts then meet the weekly allowance (429).
    record_ids["messages"] = [
        str(message_send(grant=grant, application=shop_app, data=body).pk)
        for body in (
            {"kind": "offer", "title": "10% off", "body": "This week."},
            {"kind": "thanks", "title": "Thanks", "body": "."},
        )
    ]
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

    requests: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    unroutable: Counter[str] = Counter()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        by_organisation = operation.path.startswith(("/api/v1/recalls", "/api/v1/intents"))
        headers = organisation if by_organisation else person
        for mode, strategy in _strategies(operation, record_ids, intents):

            @SETTINGS
            @given(case=strategy)
            def run(case: Any) -> None:
                requests[operation.label] += 1  # noqa: B023 (run is called at once, below)
                response = case.call(headers=headers)  # noqa: B023
                statuses[response.status_code] += 1  # noqa: B023
                if not _routes(response):
                    unroutable[operation.label] += 1  # noqa: B023
                    return
                case.validate_response(response, checks=CHECKS, headers=headers)  # noqa: B023

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                assert mode == "negative"  # nothing in this operation can be made invalid
            except Exception as error:  # noqa: BLE001 (collect every operation's failure, then fail)
                failures[f"{operation.label} [{mode}]"] = str(error)[:2000]

    total = sum(requests.values())
    print(  # noqa: T201
        f"\nschemathesis: {total} requests, {len(requests)} operations, statuses {dict(statuses)}, "
        f"{sum(unroutable.values())} to URLs no endpoint matches: {dict(unroutable)}"
    )
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert len(requests) == len(operations) and total >= len(operations) * EXAMPLES
    assert statuses[200] and statuses[201] and statuses[400] and statuses[404] and statuses[429]


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
