"""The demo vendor of `seed_demo`: a verified shop, its staff login and its two apps."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.services import account_upsert
from consent.scopes import PERSON_SCOPES
from vendors.models import Application, Membership, Organisation
from vendors.services import (
    GrantType,
    application_register,
    application_secret_reset,
    application_update,
    organisation_create,
)

DEMO_STAFF = "shop@example.com"
DEMO_ORGANISATION = "Demo Shop"
DEMO_APP = "Demo Shop app"
DEMO_RECALL_CLIENT = "Demo Shop recalls"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEMO_PURPOSES = {
    "profile:read": "To greet you by name in our app and recognise you at the till.",
    "purchases:read": "To show your order history with us and suggest refills of what you buy often.",
    "purchases:check": "To warn you before you buy something you already own.",
    "purchases:write": "To send you a receipt of every order you place with us.",
    "closet:read": "To suggest clothes that go with what you already own, in your size.",
    "appliances:read": "To remind you of warranties ending and suggest energy-saving replacements.",
    "prescriptions:read": "To remind you when a refill is due and offer a cheaper generic.",
    "preferences:read": "To leave out products that clash with your diet or allergies.",
    "messages:send": "To tell you when your size is back in stock, and to thank you for your orders.",
}


def _demo_application(
    *, organisation: Organisation, name: str, grant_type: GrantType, by: User, **settings: Any
) -> tuple[Application, str]:
    application = Application.objects.filter(organisation=organisation, name=name).first()
    if application is None:
        return application_register(
            organisation=organisation, name=name, grant_type=grant_type, by=by, **settings
        )
    application_update(application=application, name=name, **settings)
    return application, application_secret_reset(application=application, by=by)


@transaction.atomic
def demo_vendor_seed() -> dict[str, Any]:
    """Create or refresh the demo shop, its staff login and its two apps; return the credentials.

    Each run sets a fresh staff password and fresh client secrets; client ids stay the same.
    """
    password = "demo-" + secrets.token_urlsafe(9)
    staff, _ = account_upsert(
        email=DEMO_STAFF, password=password, role=User.Role.VENDOR_STAFF, display_name="Demo Shop staff"
    )
    membership = Membership.objects.select_related("organisation").filter(user=staff).first()
    if membership is None:
        organisation = organisation_create(
            staff=staff,
            name=DEMO_ORGANISATION,
            website="https://shop.example",
            privacy_contact="privacy@shop.example",
            description="A demo shop that sells groceries, clothes and home appliances.",
        )
    else:
        organisation = membership.organisation
    if not organisation.verified:
        organisation.verified = True
        organisation.save(update_fields=["verified"])

    app, app_secret = _demo_application(
        organisation=organisation,
        name=DEMO_APP,
        grant_type="authorization-code",
        by=staff,
        redirect_uris=[DEMO_REDIRECT_URI],
        scopes=list(PERSON_SCOPES),
        scope_purposes={scope: DEMO_PURPOSES[scope] for scope in PERSON_SCOPES},
        required_scopes=["profile:read"],
    )
    recalls, recalls_secret = _demo_application(
        organisation=organisation,
        name=DEMO_RECALL_CLIENT,
        grant_type="client-credentials",
        by=staff,
        redirect_uris=[],
        scopes=["recalls:publish"],
        scope_purposes={},
    )
    return {
        "vendor_staff": {"email": DEMO_STAFF, "password": password},
        "app": {
            "client_id": app.client_id,
            "client_secret": app_secret,
            "redirect_uri": DEMO_REDIRECT_URI,
            "scopes": list(app.scopes),
        },
        "recall_client": {"client_id": recalls.client_id, "client_secret": recalls_secret},
    }
