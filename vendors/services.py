"""Vendor writes: staff accounts, organisations, OAuth applications and their client secrets.

A client secret is generated here and returned in plaintext exactly once; DOT hashes it with
Django's password hashers when the application is saved (`hash_client_secret`), so nobody can
read it back afterwards, the operator included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from oauth2_provider.generators import generate_client_secret

from accounts.models import User
from audit.models import LedgerEntry
from audit.services import ledger_append
from consent.scopes import ORGANISATION_SCOPES, PERSON_SCOPES, SCOPES, SENSITIVE_SCOPES
from consent.services import application_tokens_withdraw
from consent.terms import ROSTER
from vendors.models import Application, Membership, Organisation, redirect_uri_problem
from vendors.selectors import organisation_name_problem

GrantType = Literal["authorization-code", "client-credentials"]
GRANT_TYPES: tuple[str, ...] = (
    Application.GRANT_AUTHORIZATION_CODE,
    Application.GRANT_CLIENT_CREDENTIALS,
)
PURPOSE_MAX_LENGTH = 300
MAX_REDIRECT_URIS = 10
REDIRECT_URI_MAX_LENGTH = 2000


@transaction.atomic
def organisation_create(
    *, staff: User, name: str, website: str, privacy_contact: str, description: str = ""
) -> Organisation:
    """Create the organisation of a vendor-staff account and make the account its member."""
    if staff.role != User.Role.VENDOR_STAFF:
        raise ValidationError({"staff": ["Only vendor staff can create an organisation."]})
    if Membership.objects.filter(user=staff).exists():
        raise ValidationError({"staff": ["This account already belongs to an organisation."]})
    organisation = Organisation(
        name=name.strip(),
        website=website.strip(),
        privacy_contact=privacy_contact.strip(),
        description=description.strip(),
    )
    errors: dict[str, list[str]] = {}
    try:
        organisation.full_clean(exclude=["name_key"])  # derived from the name on save
    except ValidationError as error:
        errors = dict(error.message_dict)
    if "name" not in errors and (problem := organisation_name_problem(name=name)):
        errors["name"] = [problem]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            organisation.save()
    except IntegrityError:  # the same name registered by a concurrent sign-up
        raise ValidationError(
            {"name": [organisation_name_problem(name=name) or "Choose another name."]}
        ) from None
    Membership.objects.create(user=staff, organisation=organisation)
    return organisation


@transaction.atomic
def organisation_terms_accept(
    *, organisation: Organisation, agreement_ids: Iterable[str], by: User
) -> Organisation:
    """Declare which MyTerms roster agreements the organisation accepts (in roster order), as
    its staff member `by`, in the ledger. Declaring what it already accepts writes nothing."""
    wanted = set(agreement_ids)
    known = [agreement.id for agreement in ROSTER]
    if wanted - set(known):
        raise ValidationError({"accepted_terms": ["Choose agreements from the MyTerms roster."]})
    if not Membership.objects.filter(user=by, organisation_id=organisation.pk).exists():
        raise PermissionDenied("Only the organisation's staff declare the terms it accepts.")
    locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
    accepted = [a for a in known if a in wanted]
    if locked.accepted_terms != accepted:
        locked.accepted_terms = accepted
        locked.save(update_fields=["accepted_terms"])
        ledger_append(
            kind=LedgerEntry.Kind.TERMS_DECLARED,
            actor_type=LedgerEntry.ActorType.VENDOR_ORG,
            actor_id=str(locked.pk),
            record_ids=accepted,
            reason=f"staff {by.pk}",
        )
    organisation.accepted_terms = locked.accepted_terms
    return organisation


@transaction.atomic
def organisation_verify(*, organisation: Organisation, by: User, verified: bool) -> Organisation:
    """Mark the organisation verified (or no longer verified) as the operator `by`, in the ledger.

    Only verified organisations may use the organisation scopes (recalls:publish), and people are
    told whether the sender of an alert was verified. Setting the state it already has writes nothing.
    """
    if not (by.is_active and by.is_staff):
        raise PermissionDenied("Only an operator can verify organisations.")
    locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if locked.verified != verified:
        locked.verified = verified
        locked.save(update_fields=["verified"])
        ledger_append(
            kind=LedgerEntry.Kind.ORG_VERIFIED if verified else LedgerEntry.Kind.ORG_UNVERIFIED,
            actor_type=LedgerEntry.ActorType.OPERATOR,
            actor_id=str(by.pk),
            record_ids=[locked.pk],
        )
    organisation.verified = locked.verified
    return organisation


def _clean_application(
    *,
    organisation: Organisation,
    name: str,
    grant_type: str,
    redirect_uris: Iterable[str],
    scopes: Iterable[str],
    scope_purposes: Mapping[str, str],
    required_scopes: Iterable[str],
    exclude_pk: int | None = None,
) -> dict[str, Any]:
    """Check an application's settings against the rules of INTERFACES.md §4.

    Return the normalised values, or raise a ValidationError naming every problem by field.
    """
    errors: dict[str, list[str]] = {}

    def problem(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    name = name.strip()
    same_name = Application.objects.filter(organisation=organisation, name__iexact=name)
    if exclude_pk is not None:
        same_name = same_name.exclude(pk=exclude_pk)
    if not name:
        problem("name", "Give the application a name people will recognise.")
    elif same_name.exists():
        problem("name", "Your organisation already has an application with this name.")

    person_app = grant_type == Application.GRANT_AUTHORIZATION_CODE
    if grant_type not in GRANT_TYPES:
        problem("grant_type", "Choose either people's data or recall publishing.")

    uris: list[str] = []
    for uri in redirect_uris:
        if uri in uris:
            continue
        if not uri or any(c.isspace() for c in uri):
            problem("redirect_uris", f"{uri!r}: a redirect URI cannot be empty or contain spaces")
        elif len(uri) > REDIRECT_URI_MAX_LENGTH:
            problem("redirect_uris", f"a redirect URI can be at most {REDIRECT_URI_MAX_LENGTH} characters")
        elif reason := redirect_uri_problem(uri):
            problem("redirect_uris", f"{uri}: {reason}")
        elif "@" in urlsplit(uri).netloc:
            # redirect_uri_problem reads "http://localhost:1@evil.example" as loopback.
            problem("redirect_uris", f"{uri}: a redirect URI cannot carry a user name or password")
        uris.append(uri)
    if len(uris) > MAX_REDIRECT_URIS:
        problem("redirect_uris", f"Register at most {MAX_REDIRECT_URIS} redirect URIs.")
    if person_app and not uris:
        problem("redirect_uris", "Give at least one redirect URI: people return to it after they decide.")
    if grant_type == Application.GRANT_CLIENT_CREDENTIALS and uris:
        problem("redirect_uris", "A recall-publishing application has no redirect URIs.")

    wanted = list(dict.fromkeys(scopes))
    allowed = PERSON_SCOPES if person_app else ORGANISATION_SCOPES
    unknown = [s for s in wanted if s not in SCOPES]
    misplaced = [s for s in wanted if s in SCOPES and s not in allowed]
    if unknown:
        problem("scopes", f"Unknown scopes: {', '.join(unknown)}.")
    if misplaced and grant_type in GRANT_TYPES:
        kind = "people's data" if person_app else "recall publishing"
        problem("scopes", f"An application for {kind} cannot ask for: {', '.join(misplaced)}.")
    if not wanted:
        problem("scopes", "Choose at least one scope.")
    # Store scopes in the order of the scope table, so every page lists them the same way.
    ordered = [s for s in SCOPES if s in wanted]

    purposes: dict[str, str] = {}
    for scope, text in scope_purposes.items():
        if scope not in wanted:
            problem("scope_purposes", f"{scope}: a purpose was given for a scope that is not chosen.")
            continue
        text = (text or "").strip()
        if len(text) > PURPOSE_MAX_LENGTH:
            problem("scope_purposes", f"{scope}: keep the purpose under {PURPOSE_MAX_LENGTH} characters.")
        if text:
            purposes[scope] = text
    if person_app:
        for scope in ordered:
            if scope not in purposes:
                problem("scope_purposes", f"{scope}: say in one sentence why your application needs it.")

    required = list(dict.fromkeys(required_scopes))
    if required and not person_app:
        problem("required_scopes", "Only applications for people's data have required scopes.")
    elif stray := [s for s in required if s not in wanted]:
        problem("required_scopes", f"Required scopes must be chosen scopes too: {', '.join(stray)}.")
    # Sensitive scopes are never pre-ticked on the consent page (PRODUCT.md, opt-in only).
    if sensitive := [s for s in required if s in SENSITIVE_SCOPES]:
        problem("required_scopes", f"A sensitive scope cannot be required: {', '.join(sensitive)}.")

    if errors:
        raise ValidationError(errors)
    return {
        "name": name,
        "redirect_uris": " ".join(uris),
        "scopes": ordered,
        "scope_purposes": {s: purposes[s] for s in ordered if s in purposes},
        "required_scopes": [s for s in ordered if s in required],
    }


def _empty_json_fields(values: Mapping[str, Any]) -> list[str]:
    # The model's JSON fields are not blank=True, so full_clean would refuse an empty list or
    # dict; no purposes (recall clients) and no required scopes are both valid here.
    return [field for field in ("scope_purposes", "required_scopes") if not values[field]]


@transaction.atomic
def application_register(
    *,
    organisation: Organisation,
    name: str,
    redirect_uris: Sequence[str],
    scopes: Sequence[str],
    scope_purposes: Mapping[str, str],
    required_scopes: Sequence[str] = (),
    grant_type: GrantType,
    by: User,
) -> tuple[Application, str]:
    """Register a confidential OAuth client for an organisation; return it and its plaintext secret.

    The plaintext secret exists only in the return value: it is hashed on save. The ledger
    records who registered which client, since a new client is a new party that may ask people
    for their data.
    """
    values = _clean_application(
        organisation=organisation,
        name=name,
        grant_type=grant_type,
        redirect_uris=redirect_uris,
        scopes=scopes,
        scope_purposes=scope_purposes,
        required_scopes=required_scopes,
    )
    secret = generate_client_secret()
    application = Application(
        organisation=organisation,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=grant_type,
        client_secret=secret,
        hash_client_secret=True,
        skip_authorization=False,
        algorithm=Application.NO_ALGORITHM,
        **values,
    )
    application.full_clean(exclude=_empty_json_fields(values))
    application.save()
    _app_ledger(kind=LedgerEntry.Kind.APP_REGISTERED, application=application, by=by, scopes=values["scopes"])
    return application, secret


@transaction.atomic
def application_update(
    *,
    application: Application,
    name: str,
    redirect_uris: Sequence[str],
    scopes: Sequence[str],
    scope_purposes: Mapping[str, str],
    required_scopes: Sequence[str] = (),
) -> Application:
    """Change an application's name, redirect URIs, scopes and purposes under the registration rules."""
    values = _clean_application(
        organisation=application.organisation,
        name=name,
        grant_type=application.authorization_grant_type,
        redirect_uris=redirect_uris,
        scopes=scopes,
        scope_purposes=scope_purposes,
        required_scopes=required_scopes,
        exclude_pk=application.pk,
    )
    for field, value in values.items():
        setattr(application, field, value)
    application.full_clean(exclude=_empty_json_fields(values))
    application.save(update_fields=[*values, "updated"])
    return application


@transaction.atomic
def application_secret_reset(*, application: Application, by: User) -> str:
    """Give the application a new client secret and return it in plaintext; revoke all its tokens.

    A reset answers a leak, and whoever held the old secret may hold the tokens it fetched and
    the codes it could exchange: every access token, refresh token and unexchanged authorization
    code of the app dies in the same transaction (the grants stay; the app asks each person
    again), and the ledger records the reset with the number revoked.
    """
    # The token endpoint holds this row from client authentication to commit: a token request
    # that checked the old secret either finished before (its token is deleted below) or, once
    # this commits, finds the secret it checked gone and issues nothing.
    Application.objects.select_for_update().filter(pk=application.pk).values_list("pk").first()
    secret = generate_client_secret()
    application.client_secret = secret
    application.hash_client_secret = True
    application.save(update_fields=["client_secret", "hash_client_secret", "updated"])
    revoked = application_tokens_withdraw(application=application)
    _app_ledger(kind=LedgerEntry.Kind.APP_SECRET_RESET, application=application, by=by, record_count=revoked)
    return secret


def _app_ledger(
    *,
    kind: str,
    application: Application,
    by: User,
    scopes: Sequence[str] = (),
    record_count: int | None = None,
) -> None:
    """Record an app's lifecycle event: the organisation acted, through this staff account.

    The client id goes where a recall's id goes (`record_ids`), so auditors find the app's events.
    """
    ledger_append(
        kind=kind,
        actor_type=LedgerEntry.ActorType.VENDOR_ORG,
        actor_id=str(application.organisation_id),
        record_ids=[application.client_id],
        record_count=record_count,
        scopes=scopes,
        reason=f"staff {by.pk}",
    )
