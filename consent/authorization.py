"""The checks an authorization request passes before the consent page, and again on its POST.

oauthlib checks the client, the redirect URI, the response type and the scopes, but it takes
PKCE `plain` (and a missing method, which RFC 7636 reads as `plain`): django-oauth-toolkit refuses
`plain` only when it makes the code, after the person has consented. It also lets a repeated
`code_challenge*` or `response_mode` through (the last one wins). These checks come first, in the
order of RFC 6749 §4.1.2.1: what makes the redirect URI untrustworthy is shown to the person and
never redirected; every other refusal goes back to the client (with `state` when it is sound).
Parameters this server does not know are ignored, as RFC 6749 §3.1 requires.
"""

from __future__ import annotations

import re

from django.http import QueryDict
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauthlib.oauth2.rfc6749 import errors

from consent.scopes import PERSON_SCOPES
from consent.selectors import application_find
from consent.types import OAuthApplication

# Each of these may appear at most once (RFC 6749 §3.1; RFC 7636 §4.3; RFC 9101 §5).
SINGLE_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
    "request_uri",
)
# RFC 6749 Appendix A.5: state is one or more visible ASCII characters or spaces. The bound keeps
# the redirect back to the client a reasonable URL.
STATE_MAX_LENGTH = 1024
_STATE = re.compile(rf"[\x20-\x7e]{{1,{STATE_MAX_LENGTH}}}")
# An S256 challenge is the base64url SHA-256 of the verifier, unpadded: 43 characters
# (RFC 7636 §4.2).
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# A '%' not followed by two hex digits: Django reads it as a literal, oauthlib raises on it.
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _fatal(error: errors.FatalClientError) -> FatalClientError:
    return FatalClientError(error=error)


def authorization_request_check(*, query: QueryDict, query_string: str) -> OAuthApplication:
    """Return the app of an authorization request this server will serve, or raise the refusal.

    Raise FatalClientError when the client or the redirect URI is missing, unknown or repeated
    (an error page for the person), and OAuthToolkitError carrying the redirect URI for any other
    fault (a redirect back to the client). oauthlib's own validation runs after this one.
    """
    client_id, redirect_uri = query.getlist("client_id"), query.getlist("redirect_uri")
    if len(client_id) > 1:
        raise _fatal(errors.InvalidRequestFatalError(description="Duplicate client_id parameter."))
    if not client_id or not client_id[0]:
        raise _fatal(errors.MissingClientIdError())
    application = application_find(client_id[0])
    if application is None:
        raise _fatal(errors.InvalidClientIdError())
    if len(redirect_uri) > 1:
        raise _fatal(errors.InvalidRequestFatalError(description="Duplicate redirect_uri parameter."))
    # Required even with one registered URI: the code is bound to it and the token request must
    # repeat it (RFC 6749 §4.1.3), so the server never picks a redirect for the client.
    if not redirect_uri or not redirect_uri[0]:
        raise _fatal(errors.MissingRedirectURIError())
    if not application.redirect_uri_allowed(redirect_uri[0]):
        raise _fatal(errors.MismatchingRedirectURIError())

    malformed = _BAD_PERCENT.search(query_string) is not None
    states = query.getlist("state")
    state = states[0] if len(states) == 1 and _STATE.fullmatch(states[0]) and not malformed else None

    def refuse(error: type[errors.OAuth2Error], description: str) -> OAuthToolkitError:
        refusal = error(description=description, state=state)
        return OAuthToolkitError(error=refusal, redirect_uri=redirect_uri[0])

    if malformed:
        raise refuse(errors.InvalidRequestError, "The query string has invalid percent-encoding.")
    for name in SINGLE_PARAMETERS:
        if len(query.getlist(name)) > 1:
            raise refuse(errors.InvalidRequestError, f"Duplicate {name} parameter.")
    if states and state is None:
        raise refuse(
            errors.InvalidRequestError,
            f"state must be 1 to {STATE_MAX_LENGTH} visible ASCII characters.",
        )
    if "request" in query:
        raise refuse(_RequestNotSupported, "Request objects are not supported.")
    if "request_uri" in query:
        raise refuse(_RequestUriNotSupported, "request_uri is not supported.")
    response_type = query.get("response_type")
    if not response_type:
        raise refuse(errors.InvalidRequestError, "Missing response_type parameter.")
    if response_type != "code":
        raise refuse(errors.UnsupportedResponseTypeError, "Only response_type=code is supported.")
    if query.get("response_mode", "query") != "query":
        raise refuse(errors.InvalidRequestError, "Only response_mode=query is supported.")
    challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
    if not challenge:
        raise refuse(errors.InvalidRequestError, "PKCE is required: send code_challenge with S256.")
    if method != "S256":
        raise refuse(
            errors.InvalidRequestError,
            "Transform algorithm not supported: code_challenge_method must be S256.",
        )
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise refuse(errors.InvalidRequestError, "code_challenge must be 43 base64url characters (S256).")
    scopes = (query.get("scope") or "").split()
    if not scopes:
        raise refuse(errors.InvalidScopeError, "Ask for at least one scope.")
    if not set(scopes) <= set(application.scopes) & set(PERSON_SCOPES):
        raise refuse(errors.InvalidScopeError, "Ask only for person scopes registered for this application.")
    return application


class _RequestNotSupported(errors.OAuth2Error):
    error = "request_not_supported"  # RFC 9101 §6.3


class _RequestUriNotSupported(errors.OAuth2Error):
    error = "request_uri_not_supported"  # RFC 9101 §6.3
