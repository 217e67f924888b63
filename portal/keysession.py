"""The person's opened keys between requests: in the session, sealed under a key in a cookie.

At sign-in the person's data key (and private key) is sealed with AES-256-GCM under a fresh
random key that is sent to the browser only, as an HttpOnly cookie; the session row keeps the
ciphertext. So the session table alone (a database dump, the operator) opens nothing, and the
cookie alone (without the session) opens nothing either. Logging out flushes the session; the
cookie dies with the browser session and is deleted when the session holds no keys.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from core import crypto
from personal_data.keys import Keys, StoreLocked, keys_hold, keys_scope

COOKIE = "vrm_keys"
SESSION_FIELD = "_vrm_sealed_keys"
# Between the two steps of a sign-in (accounts/twofactor.py): the keys the password opened.
PENDING_FIELD = "_vrm_pending_keys"
_NEW_COOKIE = "_vrm_new_keys_cookie"


def _aad(person_id: object) -> bytes:
    return f"vrm/session-keys/v1|{person_id}".encode()


def keys_into_session(request: HttpRequest, keys: Keys) -> None:
    """Keep the signed-in person's opened keys for their next requests (call after login())."""
    cookie_key = crypto.random_key()
    plain = keys.data + (keys.private or b"")
    request.session[SESSION_FIELD] = base64.b64encode(
        crypto.seal(cookie_key, plain, _aad(request.user.pk))
    ).decode()
    setattr(request, _NEW_COOKIE, cookie_key)


def keys_from_session(request: HttpRequest) -> Keys | None:
    sealed, cookie = request.session.get(SESSION_FIELD), request.COOKIES.get(COOKIE)
    if not sealed or not cookie:
        return None
    try:
        plain = crypto.unseal(base64.b64decode(cookie), base64.b64decode(sealed), _aad(request.user.pk))
    except (crypto.CryptoError, binascii.Error, ValueError):
        return None
    return Keys(data=plain[:32], private=plain[32:] or None)


def _pending_aad(person_id: object) -> bytes:
    return f"vrm/pending-sign-in-keys/v1|{person_id}".encode()


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def keys_into_pending(request: HttpRequest, *, person: Any, keys: Keys, recovery_code: str | None) -> None:
    """Keep the keys the password opened for the second step of the sign-in only, sealed as
    keys_into_session seals them (and with them a recovery code still to be shown, if any)."""
    cookie_key = crypto.random_key()
    plain = json.dumps({"data": _b64(keys.data), "private": _b64(keys.private), "code": recovery_code})
    request.session[PENDING_FIELD] = base64.b64encode(
        crypto.seal(cookie_key, plain.encode(), _pending_aad(person.pk))
    ).decode()
    setattr(request, _NEW_COOKIE, cookie_key)


def keys_from_pending(request: HttpRequest, *, person: Any) -> tuple[Keys, str | None] | None:
    """Take the keys keys_into_pending kept (they leave the session): (keys, recovery code)."""
    sealed, cookie = request.session.pop(PENDING_FIELD, None), request.COOKIES.get(COOKIE)
    if not sealed or not cookie:
        return None
    try:
        plain = json.loads(
            crypto.unseal(base64.b64decode(cookie), base64.b64decode(sealed), _pending_aad(person.pk))
        )
    except (crypto.CryptoError, binascii.Error, ValueError):
        return None
    private = plain["private"]
    keys = Keys(data=base64.b64decode(plain["data"]), private=base64.b64decode(private) if private else None)
    return keys, plain["code"]


def keys_pending_drop(request: HttpRequest) -> None:
    request.session.pop(PENDING_FIELD, None)


class PersonKeysMiddleware:
    """Open the signed-in person's keys for this request, and keep the key cookie in step.

    A page that needs the store while its keys are not open (a password reset by e-mail, or the
    cookie is gone) raises StoreLocked: the person is sent to unlock it with their recovery code.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with keys_scope():
            user = getattr(request, "user", None)
            keys = None
            if user is not None and user.is_authenticated and SESSION_FIELD in request.session:
                keys = keys_from_session(request)
                if keys is not None:
                    keys_hold(user, keys)
            response = self.get_response(request)
        if keys is not None and getattr(response, "streaming", False):
            # A streamed page (the export) is written after this returns: open the keys again
            # for as long as its chunks are made.
            response.streaming_content = _with_keys(response.streaming_content, user, keys)  # type: ignore[attr-defined]
        cookie_key = getattr(request, _NEW_COOKIE, None)
        if cookie_key is not None:
            response.set_cookie(
                COOKIE,
                base64.b64encode(cookie_key).decode(),
                max_age=None,  # a browser-session cookie; the session's own expiry ends it too
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        elif COOKIE in request.COOKIES and not _session_has_keys(request):
            response.delete_cookie(COOKIE, samesite="Lax")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, StoreLocked) and getattr(request, "user", None) is not None:
            return redirect("store-unlock")
        return None


def _with_keys(chunks: Iterable[bytes], user: Any, keys: Keys) -> Iterator[bytes]:
    with keys_scope():
        keys_hold(user, keys)
        yield from chunks


def _session_has_keys(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return bool(session is not None and (SESSION_FIELD in session or PENDING_FIELD in session))
