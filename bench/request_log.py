"""Measure what the JSON request line (vrm.logs.RequestLogMiddleware) adds to a request.

Times the middleware around an empty view, against the view alone, in alternating rounds, with
the log's stream sent to /dev/null (the cost of building and formatting the line, not of the
terminal): docs/operations.md, "Logs".

    VRM_DEBUG=True .venv/bin/python bench/request_log.py
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(rounds: int = 9, calls: int = 20_000) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vrm.settings")
    import django

    django.setup()
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest, HttpResponse
    from django.test import RequestFactory

    from vrm.logs import RequestLogMiddleware

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (kept open for the run)

    def view(_request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    logged = RequestLogMiddleware(view)
    request = RequestFactory().get("/terms/")
    request.user = AnonymousUser()

    def per_call(handler: object) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            handler(request)  # type: ignore[operator]
        return (time.perf_counter() - started) / calls * 1e6

    plain, with_line = [], []
    for _ in range(rounds):
        plain.append(per_call(view))
        with_line.append(per_call(logged))
    added = [w - p for w, p in zip(with_line, plain, strict=True)]
    print(
        f"view alone {statistics.median(plain):.2f} µs; with the request line "
        f"{statistics.median(with_line):.2f} µs; added {statistics.median(added):.1f} µs "
        f"(min {min(added):.1f}, max {max(added):.1f}) over {rounds} alternating rounds of {calls:,}"
    )


if __name__ == "__main__":
    main()
