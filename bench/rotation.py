"""Rotate the master key while the vendor API is under load: no errors, nothing lost, resumable.

Run by hand against PostgreSQL, with wrk installed (`apt-get install -y wrk`). It creates (and
afterwards drops) a database of its own, `vrm_bench_rotation`, and uses ephemeral keys, so
development data and keys are never touched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/rotation.py --people 6000 --grants 2000 --tokens 20 --rounds 3

It seeds `--people` synthetic people; the first `--grants` of them grant purchases:read to a
vendor app (each grant's key is wrapped by the master key) and the others are turned into
accounts from before person-held keys (their data key wrapped by the master key), so the master
key wraps a few thousand keys. `--tokens` more people each sign in and grant through the real
consent and token endpoints; their access tokens are what wrk spreads its requests over
(`GET /api/v1/purchases?limit=50` and `GET /api/v1/me`, round robin), and the hash of each
token's two answers, taken before any rotation, is the truth every later answer must match.

gunicorn (2 workers, production settings, no preload) reads the master key ring from a file
(`VRM_MASTER_KEYS_FILE`). Each round rotates to a key of its own by the production procedure
(docs/operations.md, "Master-key rotation") while wrk loads the API throughout, in three windows
back to back: step 1, step 2, step 3.

1. write the ring "new,old" to the file and `kill -HUP` gunicorn's master; wait until every
   worker is a new one, then check a reading: one share (the canary, a token nobody loads) is
   moved under the new key and its page must answer as before;
2. run `rotate_master_key`, interrupt it once a third of the keys are under the new key (SIGINT,
   or SIGKILL in even rounds), check nothing is half-written (every key opens with the key id
   stored beside it, the counts are unchanged, the ledger's key.rotated entries count exactly
   the keys moved), and run it again to the end;
3. check `key_status --json` shows nothing under the old key, write the ring "new" alone and
   HUP again; the reading now checks the old key is gone (the canary moved back under the old
   key must fail, then opens again under the new one).

Around each rotation window, a baseline window of the same length loads the same requests with
no rotation (the order alternates between rounds: the shared machine's speed drifts). The run
fails unless wrk saw no socket errors and only 2xx answers (a Lua response hook counts statuses),
every key ends under the newest key, every token's answers hash as before, the shares and
people's keys are as many as before, and `verify_ledger` passes. It prints rotation keys/s (from
the ledger's key.rotated entries: interrupted and resumed runs), and requests/s, p50 and p99 in
the rotation, baseline and HUP windows, as medians over rounds with min-max. With the defaults
it takes about 4 minutes on a 2-core machine (a minute of it seeding); wrk runs -t2 -c8 with a
10 s timeout, since a HUP holds requests while the new workers load the application.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadflows import FlowFailed, bench_app, consent_token, free_port, gunicorn_command, wrk_ms  # noqa: E402
from bench.privatedb import bench_environment, recreate  # noqa: E402
from core.crypto import MasterKeyRing, encode_key, random_key  # noqa: E402

BENCH_DB = "vrm_bench_rotation"
PURCHASES = "/api/v1/purchases?limit=50"
ME = "/api/v1/me"
SCOPES = ("purchases:read",)


def fail(message: str) -> NoReturn:
    sys.exit(f"benchmark failed: {message}")


# --- keys and environment ----------------------------------------------------------------------


class Ring:
    """The bench's master keys by id, and the file gunicorn and the commands read the ring from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, str] = {}

    def make(self, key_id: str) -> str:
        self.keys[key_id] = encode_key(random_key())
        return key_id

    def text(self, *key_ids: str) -> str:
        return ",".join(f"{k}:{self.keys[k]}" for k in key_ids)

    def write(self, *key_ids: str) -> None:
        # Whole or not at all: a worker booting mid-write must never read half a ring.
        partial = self.path.with_suffix(".partial")
        partial.write_text(self.text(*key_ids) + "\n")
        partial.chmod(0o600)
        os.replace(partial, self.path)

    def parsed(self, *key_ids: str) -> MasterKeyRing:
        return MasterKeyRing.parse(self.text(*key_ids))


def _environment(database_url: str, old_ring: str) -> str:
    return bench_environment(
        database_url,
        database=BENCH_DB,
        script="bench/rotation.py",
        VRM_HTTPS="False",
        VRM_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        VRM_API_RATE_BURST="1000000/second",
        VRM_API_RATE_SUSTAINED="1000000000/hour",
        VRM_MASTER_KEYS=old_ring,
        # seed_scale lives in devtools, which bench.settings adds; gunicorn runs vrm.settings.
        DJANGO_SETTINGS_MODULE="bench.settings",
    )


def _server_env(ring: Ring) -> dict[str, str]:
    """The environment of gunicorn and of the commands: production settings, the ring in a file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "vrm.settings"}
    env.pop("VRM_MASTER_KEYS")  # it would win over the file
    env["VRM_MASTER_KEYS_FILE"] = str(ring.path)
    return env


# --- seeding -----------------------------------------------------------------------------------


@dataclass
class Seeded:
    app: Any
    tokens: list[str]
    canary_token: str
    canary_share: Any


def _app() -> tuple[Any, str]:
    return bench_app(name="Bench rotation app", scopes=SCOPES)


def _bulk(app: Any, *, people: int, grants: int, purchases: int) -> None:
    """Seed people; the first `grants` grant purchases:read, the rest become master-wrapped."""
    from consent.services import grant_authorize
    from core.keys import master_keyring
    from devtools.scale import scale_people, scale_seed
    from personal_data.keys import keys_held
    from personal_data.models import PersonKey

    started = time.perf_counter()
    # One process: the people's opened keys stay held here, which granting needs.
    scale_seed(people=people, purchases=purchases, prefix="bulk", workers=1)
    seeded = time.perf_counter()
    everyone = list(scale_people(prefix="bulk"))
    for person in everyone[:grants]:
        grant_authorize(person=person, application=app, scopes=list(SCOPES), duration_days=30)
    granted = time.perf_counter()
    # The form accounts had before person-held keys (as tests/personal_data make_legacy does).
    ring = master_keyring()
    legacy = []
    for person in everyone[grants:]:
        held = keys_held(person)
        if held is None:
            fail(f"the keys of {person.pk} are not held after seeding")
        key_id, wrapped = ring.wrap(held.data, context=str(person.pk))
        legacy.append(
            PersonKey(
                person_id=person.pk,
                master_key_id=key_id,
                wrapped_key=wrapped,
                password_kdf="",
                password_wrap=None,
                recovery_wrap=None,
                public_key=None,
                private_wrap=None,
            )
        )
    fields = ["master_key_id", "wrapped_key", "password_kdf", "password_wrap", "recovery_wrap"]
    PersonKey.objects.bulk_update(legacy, [*fields, "public_key", "private_wrap"], batch_size=500)
    print(
        f"  {people} people with {purchases} purchases each ({seeded - started:.1f} s), "
        f"{grants} grants ({granted - seeded:.1f} s), {len(legacy)} accounts master-wrapped"
    )


def _token(app: Any, secret: str, prefix: str, purchases: int) -> str:
    """Seed one person who signs in and grants through the consent and token endpoints."""
    from devtools.scale import SCALE_FIRST_PASSWORD, scale_people, scale_seed

    scale_seed(people=1, purchases=purchases, prefix=prefix)
    person = scale_people(prefix=prefix).get()
    try:
        return consent_token(
            email=person.email, password=SCALE_FIRST_PASSWORD, app=app, secret=secret, scopes=SCOPES
        )
    except FlowFailed as failed:
        fail(str(failed))


def _seed(args: argparse.Namespace) -> Seeded:
    from django.core.management import call_command
    from django.db import connection

    from consent.models import Grant
    from devtools.scale import scale_people

    call_command("migrate", verbosity=0)
    # The in-process sign-ins and consents would log a line each, and static files are not built.
    logging.getLogger("vrm.request").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No directory at")
    app, secret = _app()
    print("seeding:")
    _bulk(app, people=args.people, grants=args.grants, purchases=args.shared)
    started = time.perf_counter()
    tokens = [_token(app, secret, f"tok{i:03d}", args.purchases) for i in range(args.tokens + 1)]
    seconds = time.perf_counter() - started
    print(f"  {len(tokens)} people signed in and granted through the endpoints ({seconds:.1f} s)")
    canary = scale_people(prefix=f"tok{args.tokens:03d}").get()
    grant = Grant.objects.select_related("share").get(person=canary)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return Seeded(app=app, tokens=tokens[:-1], canary_token=tokens[-1], canary_share=grant.share)


# --- what must not change ----------------------------------------------------------------------


def _counts() -> dict[str, int]:
    from consent.models import Grant
    from personal_data.models import PersonKey, Share, SharedCopy

    return {
        "grants": Grant.objects.count(),
        "shares": Share.objects.count(),
        "shared copies": SharedCopy.objects.count(),
        "people's keys": PersonKey.objects.count(),
        "master-wrapped people": PersonKey.objects.exclude(master_key_id="").count(),
    }


def _unchanged(before: dict[str, int], when: str) -> dict[str, int]:
    now = _counts()
    if now != before:
        fail(f"{when}, counts changed: {before} -> {now}")
    return now


def _under(key_id: str) -> int:
    from personal_data.models import PersonKey, Share

    return (
        Share.objects.filter(master_key_id=key_id).count()
        + PersonKey.objects.filter(master_key_id=key_id).count()
    )


def _all_open(ring: MasterKeyRing) -> int:
    """Unwrap every master-wrapped key with the key id stored beside it; return how many."""
    from core import crypto
    from personal_data.models import PersonKey, Share

    opened = 0
    for share_id, key_id, wrapped in Share.objects.values_list("pk", "master_key_id", "wrapped_key"):
        try:
            ring.unwrap(key_id, bytes(wrapped), context=f"share/{share_id}")
        except crypto.CryptoError:
            fail(f"share {share_id} does not open under {key_id}: half-written?")
        opened += 1
    legacy = PersonKey.objects.exclude(master_key_id="").values_list(
        "person_id", "master_key_id", "wrapped_key"
    )
    for person_id, key_id, person_wrap in legacy:
        if person_wrap is None:
            fail(f"the data key of {person_id} names {key_id} but holds no wrap")
        try:
            ring.unwrap(key_id, bytes(person_wrap), context=str(person_id))
        except crypto.CryptoError:
            fail(f"the data key of {person_id} does not open under {key_id}: half-written?")
        opened += 1
    return opened


def _move_share(share_id: Any, *, ring: Ring, to: str, others: tuple[str, ...]) -> None:
    """Rewrap one share's key under `to`, by hand (the canary; rotation counts it as done)."""
    from personal_data.models import Share

    share = Share.objects.get(pk=share_id)
    context = f"share/{share.pk}"
    keys = ring.parsed(to, *others)
    plain = keys.unwrap(share.master_key_id, bytes(share.wrapped_key), context=context)
    key_id, wrapped = keys.wrap(plain, context=context)
    Share.objects.filter(pk=share.pk).update(master_key_id=key_id, wrapped_key=wrapped)


def _answers(port: int, token: str) -> tuple[int, str]:
    """The worst status of the token's two answers and one hash over both bodies."""
    digest = hashlib.sha256()
    worst = 200
    for path in (PURCHASES, ME):
        response = requests.get(
            f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        worst = max(worst, response.status_code)
        digest.update(json.dumps(response.json(), sort_keys=True).encode() if response.ok else b"!")
    return worst, digest.hexdigest()


def _truth(port: int, tokens: list[str]) -> list[str]:
    found = []
    for token in tokens:
        status, digest = _answers(port, token)
        if status != 200:
            fail(f"a token's first read answered {status}")
        found.append(digest)
    return found


# --- gunicorn ----------------------------------------------------------------------------------


def _gunicorn(port: int, workers: int, ring: Ring, log: Path) -> subprocess.Popen[bytes]:
    command = gunicorn_command(port=port, workers=workers, log=log)
    server = subprocess.Popen(
        command, env=_server_env(ring), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"gunicorn exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            return server
        except requests.RequestException:  # not listening yet, or still importing
            time.sleep(0.3)
    server.terminate()
    fail("gunicorn did not answer within 60 s")


def _workers(master: int) -> set[int]:
    """The pids of the master's children (its workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def _reload(server: subprocess.Popen[bytes], workers: int) -> float:
    """HUP gunicorn's master and wait until every worker is a new one; return the seconds taken."""
    before = _workers(server.pid)
    started = time.monotonic()
    os.kill(server.pid, signal.SIGHUP)
    while time.monotonic() - started < 60:
        now = _workers(server.pid)
        if len(now) == workers and not now & before:
            return time.monotonic() - started
        time.sleep(0.05)
    fail("gunicorn's workers were not replaced within 60 s of the HUP")


def _check_reading(port: int, token: str, truth: str, *, expect_ok: bool, times: int = 8) -> None:
    for _ in range(times):  # a new connection each time, so both workers answer some
        status, digest = _answers(port, token)
        if expect_ok and (status != 200 or digest != truth):
            fail(f"after the HUP the canary answered {status} (or other content): a worker kept the old ring")
        if not expect_ok and status == 200:
            fail("after the HUP a worker still opened a share under the dropped key")


# --- wrk -----------------------------------------------------------------------------------------


LUA = """
tokens = {%(tokens)s}
paths = {"%(purchases)s", "%(me)s"}
threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads * 7)
end

function init(args)
  n = offset
  statuses = {}
end

function request()
  n = n + 1
  local token = tokens[(n %% #tokens) + 1]
  local path = paths[(math.floor(n / #tokens) %% #paths) + 1]
  return wrk.format("GET", path, {Authorization = "Bearer " .. token})
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  for status, count in pairs(totals) do
    io.write(string.format("status %%d %%d\\n", status, count))
  end
end
"""


@dataclass
class Load:
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    non_2xx: int = 0

    @property
    def errors(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return self.socket_errors + self.non_2xx + bad


class Wrk:
    def __init__(self, port: int, script: Path, args: argparse.Namespace) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.script = script
        self.args = args

    def start(self, seconds: float) -> subprocess.Popen[str]:
        # --timeout 10s: a client's patience; the HUP holds new connections while workers boot.
        command = [
            "wrk", f"-t{self.args.threads}", f"-c{self.args.connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "--latency", "-s", str(self.script), self.url,
        ]  # fmt: skip
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def result(process: subprocess.Popen[str], stop: bool = False) -> Load:
        if stop:
            process.send_signal(signal.SIGINT)  # wrk stops its threads and prints its summary
        output, errors = process.communicate(timeout=60)
        percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
        total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if rate is None or total is None or set(percentile) != {"50", "99"}:
            fail(f"cannot read wrk's output:\n{output}\n{errors}")
        latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.MULTILINE)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        socket_errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
        )
        seconds = float(total.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[total.group(3)]
        return Load(
            seconds=seconds,
            requests_per_second=float(rate.group(1)),
            p50_ms=wrk_ms(percentile["50"]),
            p99_ms=wrk_ms(percentile["99"]),
            max_ms=wrk_ms(latency.group(1)) if latency else 0.0,
            requests=int(total.group(1)),
            statuses={int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", output, re.MULTILINE)},
            socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
            non_2xx=int(bad.group(1)) if bad else 0,
        )


# --- one rotation --------------------------------------------------------------------------------


@dataclass
class Run:
    keys: int
    rate: float  # keys/s between the first batch's ledger entry and the last one's


@dataclass
class Rotation:
    add: Load  # the window of the first HUP and its check
    window: Load  # the window of both rotate_master_key runs and the checks between them
    drop: Load  # key_status, the second HUP and its checks
    interrupted: Run
    resumed: Run
    signal_name: str
    rotating_seconds: float
    hup_seconds: list[float]


def _ledger_mark() -> int:
    from audit.models import LedgerEntry

    return LedgerEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _ledger_run(after: int, newest: str) -> Run:
    """Keys rewrapped under `newest` per the key.rotated entries after id `after`, and their pace."""
    from audit.models import LedgerEntry

    entries = list(
        LedgerEntry.objects.filter(id__gt=after, kind="key.rotated", reason__endswith=f" under {newest}")
        .order_by("id")
        .values_list("record_count", "created_at")
    )
    if not entries:
        return Run(keys=0, rate=0.0)
    keys = sum(n for n, _ in entries)
    span = (entries[-1][1] - entries[0][1]).total_seconds()
    # The first batch's work lies before its entry: the span covers the batches after it.
    return Run(keys=keys, rate=(keys - entries[0][0]) / span if span else 0.0)


def _command(ring: Ring, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=_server_env(ring),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rotate(
    *,
    ring: Ring,
    old: str,
    new: str,
    kill: signal.Signals,
    seeded: Seeded,
    truth_canary: str,
    server: subprocess.Popen[bytes],
    port: int,
    wrk: Wrk,
    args: argparse.Namespace,
    before: dict[str, int],
) -> Rotation:
    # Three windows back to back, each wrk stopped by SIGINT once its step is done.
    load = wrk.start(600)
    time.sleep(0.5)
    hups = []
    # 1. The new key first, the old one after it; every worker rereads the file on the HUP.
    ring.write(new, old)
    hups.append(_reload(server, args.server_workers))
    _move_share(seeded.canary_share.pk, ring=ring, to=new, others=(old,))
    _check_reading(port, seeded.canary_token, truth_canary, expect_ok=True, times=4)
    add = Wrk.result(load, stop=True)

    # 2. Rotate, interrupt it after some batches, check nothing is half-written, run it again.
    total = _under(old)
    mark = _ledger_mark()
    load = wrk.start(600)
    rotating = time.monotonic()
    first = _command(ring, "rotate_master_key", f"--batch-size={args.batch_size}")
    while _under(new) < total // 3 + 1:
        if first.poll() is not None:
            fail(f"rotate_master_key ended before it could be interrupted: {first.communicate()}")
        time.sleep(0.02)
    first.send_signal(kill)
    first.communicate(timeout=60)
    if first.returncode == 0:
        fail("rotate_master_key finished before the interruption reached it")
    interrupted = _ledger_run(mark, new)
    _unchanged(before, f"after the {kill.name}")
    # Every batch's keys and its ledger entry commit together: the entries count the keys moved.
    if interrupted.keys + 1 != _under(new):  # + the canary, moved by hand
        fail(
            f"after the {kill.name}, {_under(new)} keys are under {new}; the ledger counts {interrupted.keys}"
        )
    _all_open(ring.parsed(new, old))
    mark = _ledger_mark()
    second = _command(ring, "rotate_master_key", f"--batch-size={args.batch_size}")
    out, err = second.communicate(timeout=600)
    if second.returncode != 0 or "0 could not be unwrapped" not in out:
        fail(f"the resumed rotate_master_key failed ({second.returncode}): {out} {err[-2000:]}")
    rotating_seconds = time.monotonic() - rotating
    window = Wrk.result(load, stop=True)
    resumed = _ledger_run(mark, new)

    # 3. Drop the old key only once key_status shows nothing under it.
    load = wrk.start(600)
    status_run = _command(ring, "key_status", "--json")
    out, err = status_run.communicate(timeout=120)
    status = json.loads(out)["master_keys"]
    left = status.get(old, {"grant_keys": 0, "people": 0})
    if left["grant_keys"] or left["people"] or not status[new]["newest"]:
        fail(f"key_status still shows keys under {old}: {status}")
    ring.write(new)
    hups.append(_reload(server, args.server_workers))
    _move_share(seeded.canary_share.pk, ring=ring, to=old, others=(new,))
    _check_reading(port, seeded.canary_token, truth_canary, expect_ok=False, times=4)
    _move_share(seeded.canary_share.pk, ring=ring, to=new, others=(old,))
    _check_reading(port, seeded.canary_token, truth_canary, expect_ok=True, times=4)
    drop = Wrk.result(load, stop=True)
    return Rotation(
        add=add,
        window=window,
        drop=drop,
        interrupted=interrupted,
        resumed=resumed,
        signal_name=kill.name,
        rotating_seconds=rotating_seconds,
        hup_seconds=hups,
    )


def _after_round(
    *, new: str, port: int, tokens: list[str], truth: list[str], before: dict[str, int], ring: Ring
) -> None:
    from personal_data.models import PersonKey, Share

    if (
        Share.objects.exclude(master_key_id=new).exists()
        or PersonKey.objects.exclude(master_key_id__in=["", new]).exists()
    ):
        fail(f"some keys are not under {new}")
    opened = _all_open(ring.parsed(new))
    now = _unchanged(before, f"after the rotation to {new}")
    if opened != now["shares"] + now["master-wrapped people"]:
        fail("not every key opened under the new key alone")
    for token, expected in zip(tokens, truth, strict=True):
        status, digest = _answers(port, token)
        if status != 200 or digest != expected:
            fail(f"a token's answers changed after the rotation to {new} ({status})")


def _verify_ledger() -> None:
    """Seal what the run wrote (reads and key.rotated entries) and verify the whole ledger."""
    from django.core.management import call_command

    from audit.models import LedgerEntry

    out = io.StringIO()
    try:
        call_command("seal_ledger", stdout=out, stderr=out)
        call_command("verify_ledger", stdout=out, stderr=out)
    except SystemExit:
        fail(f"verify_ledger did not pass:\n{out.getvalue()}")
    intact = next(line for line in out.getvalue().splitlines() if line.startswith("ledger intact"))
    rotated = LedgerEntry.objects.filter(kind="key.rotated").count()
    print(f"verify_ledger: {intact}; {rotated} of them key.rotated")


# --- report --------------------------------------------------------------------------------------


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def _report(rotations: list[Rotation], baselines: list[Load], args: argparse.Namespace) -> None:
    print(
        f"\nwrk -t{args.threads} -c{args.connections} over {args.tokens} tokens x 2 endpoints, gunicorn "
        f"--workers {args.server_workers}, {os.cpu_count()} cores shared by wrk, gunicorn, PostgreSQL and "
        f"the rotation; {len(rotations)} rounds, medians (min-max):"
    )
    interrupted = [r.interrupted.rate for r in rotations]
    resumed = [r.resumed.rate for r in rotations]
    print(
        f"  rotation, interrupted run: {_spread(interrupted, ',.0f')} keys/s "
        f"({', '.join(f'{r.interrupted.keys} keys, {r.signal_name}' for r in rotations)})"
    )
    print(
        f"  rotation, resumed run:     {_spread(resumed, ',.0f')} keys/s "
        f"({', '.join(str(r.resumed.keys) for r in rotations)} keys)"
    )
    print(
        f"  rotation window (both runs with their start-up and the checks between them): "
        f"{_spread([r.window.seconds for r in rotations], '.1f')} s; "
        f"HUP until every worker is new {_spread([h for r in rotations for h in r.hup_seconds], '.1f')} s"
    )
    for label, loads in (
        ("rotation windows", [r.window for r in rotations]),
        ("baseline windows", baselines),
        ("HUP windows", [x for r in rotations for x in (r.add, r.drop)]),
    ):
        print(
            f"  {label:16}: {_spread([x.requests_per_second for x in loads], ',.0f')} req/s, "
            f"p50 {_spread([x.p50_ms for x in loads], '.1f')} ms, "
            f"p99 {_spread([x.p99_ms for x in loads], '.1f')} ms, "
            f"max {_spread([x.max_ms for x in loads], ',.0f')} ms; "
            f"{sum(x.requests for x in loads):,} requests, {sum(x.errors for x in loads)} errors "
            f"(statuses {_merged(loads)})"
        )
    ratios = [
        r.window.requests_per_second / b.requests_per_second
        for r, b in zip(rotations, baselines, strict=True)
    ]
    print(f"  ratio rotation / baseline window, per round: {_spread(ratios, '.2f')}")


def _merged(loads: list[Load]) -> str:
    total: dict[int, int] = {}
    for load in loads:
        for status, n in load.statuses.items():
            total[status] = total.get(status, 0) + n
    return ", ".join(f"{s}: {n:,}" for s, n in sorted(total.items()))


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=6000, help="synthetic people with master-wrapped keys")
    parser.add_argument("--grants", type=int, default=2000, help="of them, how many grant (one share each)")
    parser.add_argument("--shared", type=int, default=2, help="purchases per synthetic person")
    parser.add_argument("--tokens", type=int, default=20, help="people who grant through the endpoints")
    parser.add_argument("--purchases", type=int, default=60, help="purchases per token person")
    parser.add_argument("--batch-size", type=int, default=200, help="rotate_master_key --batch-size")
    parser.add_argument("--server-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="rotations, each with a baseline window")
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the {BENCH_DB} database (its keys are ephemeral)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/rotation.py needs wrk: apt-get install -y wrk")
    if not 0 < args.grants <= args.people:
        sys.exit("--grants must be between 1 and --people")

    workdir = Path(tempfile.mkdtemp(prefix="vrm-bench-rotation-"))
    ring = Ring(workdir / "master_keys")
    old = ring.make("old")
    ring.write(old)
    admin_url = _environment(os.environ.get("DATABASE_URL", ""), ring.text(old))
    recreate(admin_url, database=BENCH_DB)
    server: subprocess.Popen[bytes] | None = None
    log = workdir / "gunicorn.log"
    try:
        import django

        django.setup()
        from django.db import connection

        seeded = _seed(args)
        connection.close()
        before = _counts()
        print(f"  {before['shares']} shares and {before['master-wrapped people']} people's keys under {old}")

        port = free_port()
        server = _gunicorn(port, args.server_workers, ring, log)
        truth = _truth(port, seeded.tokens)
        truth_canary = _truth(port, [seeded.canary_token])[0]
        script = workdir / "tokens.lua"
        script.write_text(
            LUA % {"tokens": ", ".join(f'"{t}"' for t in seeded.tokens), "purchases": PURCHASES, "me": ME}
        )
        wrk = Wrk(port, script, args)
        Wrk.result(wrk.start(3))  # warm up: workers import lazily, statements get prepared

        rotations: list[Rotation] = []
        baselines: list[Load] = []
        window = 12.0
        for number in range(args.rounds):
            new = ring.make(f"r{number + 1}")
            kill = signal.SIGINT if number % 2 == 0 else signal.SIGKILL
            baseline_first = number % 2 == 0
            if baseline_first:
                baselines.append(Wrk.result(wrk.start(window)))
            rotation = _rotate(
                ring=ring, old=old, new=new, kill=kill, seeded=seeded, truth_canary=truth_canary,
                server=server, port=port, wrk=wrk, args=args, before=before,
            )  # fmt: skip
            rotations.append(rotation)
            window = rotation.window.seconds
            if not baseline_first:
                baselines.append(Wrk.result(wrk.start(window)))
            _after_round(new=new, port=port, tokens=seeded.tokens, truth=truth, before=before, ring=ring)
            hup_windows = (rotation.add, rotation.drop)
            print(
                f"  round {number + 1}/{args.rounds}: {old} -> {new}, {rotation.signal_name} after "
                f"{rotation.interrupted.keys} keys, resumed {rotation.resumed.keys}; "
                f"rotation window {rotation.window.seconds:.1f} s "
                f"{rotation.window.requests_per_second:,.0f} req/s ({rotation.window.errors} errors), "
                f"baseline {baselines[-1].requests_per_second:,.0f} req/s ({baselines[-1].errors} errors); "
                f"HUPs {', '.join(f'{h:.1f}' for h in rotation.hup_seconds)} s, their windows' "
                f"slowest answer {max(x.max_ms for x in hup_windows):,.0f} ms "
                f"({sum(x.errors for x in hup_windows)} errors)",
                flush=True,
            )
            old = new
        _verify_ledger()
        _report(rotations, baselines, args)
        if any(x.errors for x in [*baselines, *(w for r in rotations for w in (r.add, r.window, r.drop))]):
            fail("some requests failed")
        connection.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            recreate(admin_url, database=BENCH_DB, drop_only=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
