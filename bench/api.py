"""Benchmark the vendor API against a plain DRF endpoint, over HTTP, under gunicorn.

Run by hand against PostgreSQL, with wrk installed (`apt-get install -y wrk`). It creates (and
afterwards drops) a database of its own, `vrm_bench_api`, and uses ephemeral keys, so
development data and keys are never touched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/api.py --people 10000 --purchases 100

It seeds the synthetic people with `seed_scale`, lets one of them grant every person scope to a
vendor app through the real consent and token endpoints (Django's test client), copies the 50
purchases the API's first page shows into a table in clear (bench.models), starts gunicorn (2
workers, production settings: VRM_DEBUG=False, no throttling to speak of) on a free loopback port
and loads three endpoints with wrk, in turn, for several rounds:

- `GET /api/v1/purchases?limit=50` with the bearer token: token lookup, grant and scope check,
  throttles, 50 records decrypted, a ledger entry written;
- `GET /bench/baseline`: a plain DRF ModelSerializer list of those 50 purchases in clear
  columns, no authentication: the same response body, the target's yardstick;
- `GET /bench/baseline-ledger`: the same kind of list of 50 ledger entries, the yardstick of
  earlier runs, whose rows are six times the size of a purchase (reported beside, for continuity).

Both baselines are mounted only by bench.settings (bench/baseline.py). Target: the
consent-checked endpoint serves >= 1.0x the clear purchases' requests/s. The host's speed
drifts by more than that margin within a minute, so each round loads the endpoints seconds
apart, the order alternates, and the report gives medians over rounds and the range of the
per-round ratios. `--profile N` then profiles N requests of the API and the baseline
in-process (cProfile, Django's test client) and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadflows import FlowFailed, bench_app, consent_token, free_port, gunicorn_command, wrk_ms  # noqa: E402
from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench_api"
API_PATH = "/api/v1/purchases?limit=50"
BASELINE_PATH = "/bench/baseline"
LEDGER_BASELINE_PATH = "/bench/baseline-ledger"
ENDPOINTS = {
    "api": "GET " + API_PATH,
    "baseline": "GET " + BASELINE_PATH + " (the same purchases in clear)",
    "ledger": "GET " + LEDGER_BASELINE_PATH + " (ledger entries)",
}


def _environment(database_url: str) -> str:
    return bench_environment(
        database_url,
        database=BENCH_DB,
        script="bench/api.py",
        VRM_HTTPS="False",
        # testserver: the in-process test client that runs the consent flow and the profile.
        VRM_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        # The throttles still run (their cache round trips are part of the cost), but never bite.
        VRM_API_RATE_BURST="1000000/second",
        VRM_API_RATE_SUSTAINED="1000000000/hour",
        DJANGO_SETTINGS_MODULE="bench.settings",
    )


def _recreate(admin_url: str, *, drop_only: bool = False) -> None:
    recreate(admin_url, database=BENCH_DB, drop_only=drop_only)


def _seed(people: int, purchases: int, workers: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    out = io.StringIO()
    started = time.perf_counter()
    call_command("seed_scale", people=people, purchases=purchases, workers=workers, stdout=out)
    print(f"seed_scale --people {people} --purchases {purchases} --workers {workers}:")
    print(f"  {out.getvalue().strip()}")
    print(f"  (wall clock {time.perf_counter() - started:.1f} s)")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _access_token() -> str:
    """Let the first synthetic person grant every person scope to a new app; return a token."""
    from consent.scopes import PERSON_SCOPES
    from devtools.scale import SCALE_FIRST_PASSWORD, scale_people

    person = scale_people().first()
    if person is None:
        sys.exit("benchmark failed: no synthetic people (seed_scale did not run)")
    app, secret = bench_app(name=f"Bench app {secrets.token_hex(4)}", scopes=PERSON_SCOPES)

    try:
        return consent_token(
            email=person.email, password=SCALE_FIRST_PASSWORD, app=app, secret=secret, scopes=PERSON_SCOPES
        )
    except FlowFailed as failed:
        sys.exit(f"benchmark failed: {failed}")


def _gunicorn(port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = gunicorn_command(port=port, workers=workers, log=log)
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(server, port, log)
    except BaseException:
        server.terminate()
        server.wait(timeout=30)
        raise
    return server


def _wait_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"benchmark failed: gunicorn exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/ledger/checkpoint", timeout=10)
            return
        except requests.RequestException:  # not listening yet, or still importing
            time.sleep(0.3)
    sys.exit("benchmark failed: gunicorn did not answer within 60 s")


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def _wrk(url: str, *, token: str | None, threads: int, connections: int, seconds: int) -> Load:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    total = re.search(r"(\d+) requests in", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None or total is None or set(percentile) != {"50", "99"}:
        sys.exit(f"benchmark failed: cannot read wrk's output:\n{output}")
    return Load(
        requests_per_second=float(rate.group(1)),
        p50_ms=wrk_ms(percentile["50"]),
        p99_ms=wrk_ms(percentile["99"]),
        requests=int(total.group(1)),
        errors=errors,
    )


def _measure(
    endpoints: dict[str, tuple[str, str | None]], *, rounds: int, seconds: int, load: dict[str, int]
) -> list[dict[str, Load]]:
    """Load each endpoint in turn, `rounds` times, alternating the order.

    The machine's speed drifts by more than the difference being measured (other tenants of
    the host), so each round's ratios compare runs a few seconds apart, and the report takes
    the median over rounds.
    """
    results = []
    names = list(endpoints)
    for number in range(rounds):
        found = {}
        for name in names if number % 2 == 0 else names[::-1]:
            url, bearer = endpoints[name]
            found[name] = _wrk(url, token=bearer, seconds=seconds, **load)
        rates = ", ".join(f"{name} {found[name].requests_per_second:,.0f}" for name in names)
        ratio = found["api"].requests_per_second / found["baseline"].requests_per_second
        print(f"  round {number + 1}/{rounds}: {rates} req/s; API / baseline {ratio:.2f}", flush=True)
        results.append(found)
    return results


def _report(rounds: list[dict[str, Load]], args: argparse.Namespace) -> None:
    print(
        f"\nwrk -t{args.threads} -c{args.connections}, {len(rounds)} rounds of {args.duration} s per "
        f"endpoint, gunicorn --workers {args.server_workers}, {os.cpu_count()} cores shared by wrk, "
        "gunicorn and PostgreSQL (medians over rounds)"
    )
    for name, label in ENDPOINTS.items():
        loads = [r[name] for r in rounds]
        print(
            f"{label}\n    {statistics.median(x.requests_per_second for x in loads):>8,.0f} req/s   "
            f"p50 {statistics.median(x.p50_ms for x in loads):6.2f} ms   "
            f"p99 {statistics.median(x.p99_ms for x in loads):6.2f} ms   "
            f"({sum(x.requests for x in loads):,} requests, {sum(x.errors for x in loads)} errors)"
        )
    for name, what in (("baseline", "the same purchases in clear"), ("ledger", "ledger entries")):
        ratios = sorted(r["api"].requests_per_second / r[name].requests_per_second for r in rounds)
        ratio = statistics.median(ratios)
        verdict = (
            "" if name != "baseline" else f" ({'meets' if ratio >= 1.0 else 'misses'} the >= 1.0x target)"
        )
        print(
            f"ratio consent-checked / {what}: {ratio:.2f}x, rounds from {ratios[0]:.2f}x to "
            f"{ratios[-1]:.2f}x{verdict}"
        )
    if any(r[name].errors for r in rounds for name in r):
        sys.exit("benchmark failed: some responses were errors")


def _api_page(port: int, token: str) -> list[dict[str, Any]]:
    """The API's first page: 200, 50 purchases and Grant-Expires, or the benchmark stops."""
    api = requests.get(
        f"http://127.0.0.1:{port}{API_PATH}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if api.status_code != 200 or len(api.json()["results"]) != 50 or not api.headers.get("Grant-Expires"):
        sys.exit(f"benchmark failed: the API did not return a page of 50 purchases: {api.text[:300]}")
    return list(api.json()["results"])


def _check_baselines(port: int, page: list[dict[str, Any]]) -> None:
    """Both baselines answer 50 rows; the clear one answers the API's very documents."""
    clear = requests.get(f"http://127.0.0.1:{port}{BASELINE_PATH}", timeout=10)
    if clear.status_code != 200 or sorted(clear.json(), key=lambda d: d["id"]) != sorted(
        page, key=lambda d: d["id"]
    ):
        sys.exit(f"benchmark failed: the baseline does not serve the API's page: {clear.text[:300]}")
    ledger = requests.get(f"http://127.0.0.1:{port}{LEDGER_BASELINE_PATH}", timeout=10)
    if ledger.status_code != 200 or len(ledger.json()) != 50:
        sys.exit(f"benchmark failed: the ledger baseline did not return 50 rows: {ledger.text[:300]}")


def _clear_copy(token: str) -> None:
    """Store the documents of the API's first page in clear (the baseline's table)."""
    from django.test import Client

    from bench.models import ClearPurchase

    response = Client().get(API_PATH, HTTP_AUTHORIZATION=f"Bearer {token}")
    if response.status_code != 200:
        sys.exit(f"benchmark failed: the API answered {response.status_code} in-process")
    ClearPurchase.objects.bulk_create(ClearPurchase(**doc) for doc in response.json()["results"])


def _profile(token: str, n: int) -> None:
    """Profile n requests of each endpoint in this process (the whole middleware stack)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    for label, path, headers in (
        ("API", API_PATH, {"HTTP_AUTHORIZATION": f"Bearer {token}"}),
        ("baseline", BASELINE_PATH, {}),
    ):
        client = Client()
        for _ in range(20):  # warm caches and connections outside the profile
            client.get(path, **headers)
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for _ in range(n):
            response = client.get(path, **headers)
        profile.disable()
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            sys.exit(f"benchmark failed: {label} answered {response.status_code} in the profile")
        print(f"\nprofile of {label} ({n} requests in-process, {seconds / n * 1000:.2f} ms each):")
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(15)
        with CaptureQueriesContext(connection) as queries:
            client.get(path, **headers)
        print(f"SQL of one {label} request ({len(queries)} queries):")
        for query in queries:
            print(f"  {query['time']}s  {query['sql'][:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--seed-workers", type=int, default=2, help="processes for seed_scale")
    parser.add_argument("--server-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint and round")
    parser.add_argument(
        "--rounds", type=int, default=6, help="rounds, each loading every endpoint in turn (order alternates)"
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="then profile N requests each")
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the {BENCH_DB} database (its keys are ephemeral)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/api.py needs wrk: apt-get install -y wrk")
    admin_url = _environment(os.environ.get("DATABASE_URL", ""))
    _recreate(admin_url)
    server: subprocess.Popen[bytes] | None = None
    log = Path(tempfile.mkstemp(prefix="vrm-bench-gunicorn-", suffix=".log")[1])
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        _seed(args.people, args.purchases, args.seed_workers)
        token = _access_token()
        _clear_copy(token)
        connection.close()

        port = free_port()
        server = _gunicorn(port, args.server_workers, log)
        page = _api_page(port, token)
        base = f"http://127.0.0.1:{port}"
        endpoints = {
            "api": (base + API_PATH, token),
            "baseline": (base + BASELINE_PATH, None),
            "ledger": (base + LEDGER_BASELINE_PATH, None),
        }
        load = {"threads": args.threads, "connections": args.connections}
        # Warm up every endpoint (workers import lazily, connections open, statements get
        # prepared, and the API's reads write the ledger entries the ledger baseline lists).
        for url, bearer in endpoints.values():
            _wrk(url, token=bearer, seconds=3, **load)
        _check_baselines(port, page)
        rounds = _measure(endpoints, rounds=args.rounds, seconds=args.duration, load=load)
        _report(rounds, args)
        if args.profile:
            _profile(token, args.profile)
        connection.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            _recreate(admin_url, drop_only=True)


if __name__ == "__main__":
    main()
