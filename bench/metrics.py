"""Measure what the metrics middleware adds to a request (docs/metrics.md, "Cost").

Times a cheap named route that touches no database (`/.well-known/oauth-authorization-server`)
through Django's test client, with VRM_METRICS on and off in alternating rounds, in one process
with the plain registry (no database is read, so no migrated database is needed):

    VRM_DEBUG=True .venv/bin/python bench/metrics.py --requests 2000 --rounds 11

The machine is shared and noisy: medians and spread over the rounds are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

URL = "/.well-known/oauth-authorization-server"


def _expect(client: object, url: str, status: int) -> None:
    got = client.get(url).status_code  # type: ignore[attr-defined]
    if got != status:
        raise SystemExit(f"{url} answered {got}, expected {status}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vrm.settings")
    import django

    django.setup()
    from django.test import Client, override_settings

    clients = {}
    for on in (False, True):
        # The middleware chain is built on a client's first request, under the setting as it is then.
        with override_settings(VRM_METRICS=on):
            clients[on] = Client()
            _expect(clients[on], URL, 200)
    _expect(clients[False], "/metrics", 404)

    per_request: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for on in (False, True) if round_ % 2 else (True, False):
            client = clients[on]
            start = time.perf_counter()
            for _ in range(args.requests):
                client.get(URL)
            per_request[on].append((time.perf_counter() - start) / args.requests * 1e6)
    median_off, median_on = statistics.median(per_request[False]), statistics.median(per_request[True])
    for label, values in (("off", per_request[False]), ("on", per_request[True])):
        spread = f"min {min(values):.1f}, max {max(values):.1f}"
        print(f"metrics {label}: median {statistics.median(values):.1f} µs/request ({spread})")
    rounds = f"{args.rounds} rounds of {args.requests} requests"
    print(f"overhead: {median_on - median_off:+.1f} µs/request ({median_on / median_off:.3f}x), {rounds}")
    _middleware_alone(args.rounds)


def _middleware_alone(rounds: int, calls: int = 100_000) -> None:
    """The middleware's own work, around a view that does nothing (no client, no other middleware)."""
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings
    from django.urls import resolve

    from vrm.metrics import MetricsMiddleware

    request = RequestFactory().get(URL)
    request.resolver_match = resolve(URL)
    response = HttpResponse()

    def view(_request: object) -> HttpResponse:
        return response

    with override_settings(VRM_METRICS=True):
        wrapped = MetricsMiddleware(view)
    times: dict[str, list[float]] = {"bare": [], "wrapped": []}
    for _ in range(rounds):
        for label, call in (("bare", view), ("wrapped", wrapped)):
            start = time.perf_counter()
            for _ in range(calls):
                call(request)
            times[label].append((time.perf_counter() - start) / calls * 1e6)
    added = statistics.median(times["wrapped"]) - statistics.median(times["bare"])
    print(f"middleware alone: {added:.2f} µs/request (median of {rounds} rounds of {calls:,} calls)")


if __name__ == "__main__":
    main()
