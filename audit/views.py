"""The ledger's tiles as static resources (C2SP tlog-tiles): `/ledger/tile/<L>/<N>[.p/<W>]`.

Anyone can rebuild any inclusion or consistency proof from them and check it against a signed
checkpoint, without asking the server for proofs. A tile's bytes never change, so responses are
cacheable for a year. Entry bundles (`/ledger/tile/entries/...`) are not served: entries name
people's pseudonyms and vendors' activity, which only the person and auditors may read.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from audit import tiles
from audit.selectors import tile_get
from core.clients import client_address
from core.problems import problem_response
from core.ratelimits import Limit, limit_count, limit_wait

IMMUTABLE = "public, max-age=31536000, immutable"


@require_GET
def tile(request: HttpRequest, level: str, index: str, width: str | None = None) -> HttpResponse:
    """Serve one tile: its hashes at `level`, index `index`, full or the first `width` of them."""
    limit = Limit(group="ledger-tiles", key=client_address(request), rate=settings.VRM_LEDGER_TILE_RATE)
    wait = limit_wait(request, limit)
    if wait:
        response = problem_response(429, "Too Many Requests", "Too many tile requests; slow down.")
        response["Retry-After"] = str(wait)
        return response
    limit_count(request, limit)
    hashes = tiles.TILE_WIDTH if width is None else int(width)
    if width is not None and hashes >= tiles.TILE_WIDTH:  # 1..255: a full tile has no .p/ suffix
        return problem_response(404, "Not Found", "A partial tile is 1 to 255 hashes wide.")
    blob = tile_get(level=int(level), index=tiles.index_parse(index), width=hashes)
    if blob is None:
        return problem_response(404, "Not Found", "The ledger's newest checkpoint has no such tile.")
    response = HttpResponse(blob, content_type="application/octet-stream")
    response["Cache-Control"] = IMMUTABLE
    return response


@require_GET
def entry_bundle(request: HttpRequest, path: str) -> HttpResponse:
    """Refuse entry bundles: ledger entries are not public (module docstring)."""
    return problem_response(
        404,
        "Not Found",
        "Ledger entries are not published: they concern people. Auditors read them in the auditor "
        "portal; a person reads their own on their activity page.",
    )
