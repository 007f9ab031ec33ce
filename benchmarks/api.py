"""Latency of the HTTP API (``churnlens serve``) on 127.0.0.1: p50/p99 for 1 and 100 customers per
request, given as ready features and as raw events, over a bounded loop; then the throughput of
concurrent clients against one and two workers.

Run (from the repository, after ``make venv-dev``; prefix with ``nice -n 5`` on a shared machine):

  python benchmarks/api.py                       # trains the scoring.py model (500 trees x 15 leaves, ~1 min)
  python benchmarks/api.py --model PATH_OR_URI   # an existing model; --tracking-uri as for serve
  python benchmarks/api.py --cases features-1 scale-out     # only some cases (default: all)
  python benchmarks/api.py --requests-one 300 --requests-many 50 --lang en --json out.json

Issue #12's targets, one uvicorn worker, 3 reasons in French (the defaults here): one customer as
raw events p99 <= 20 ms (``events-1``), one customer as ready feature rows p99 <= 8 ms
(``features-1``), and ``--workers 2`` serving >= 1.6x the requests per second of one worker with 4
concurrent clients (``scale-out``). The table printed at the end has one row per case, with the
load average; record it in benchmarks/RESULTS.md with the command, date, commit and load.

Latency: a real uvicorn process (``churnlens serve``, one worker) under ``timeout``, stopped at
the end; the client is one keep-alive ``httpx.Client``. Each request asks for ``--reasons`` reasons
(in French by default), so it includes feature building (raw events), prediction, calibration and
exact TreeSHAP. The one-customer cases send a different customer in every request (as many as
the simulated base allows: ``--customers``), so no answer is served from a repeat. The first
``--warmup`` requests of each case are not counted.

Scale-out: the throughput of ``--clients`` concurrent clients (one keep-alive connection each, one
customer as feature rows per request) against ``serve --workers 1`` and ``--workers 2``, both
servers up, measured in turns for ``--rounds`` rounds; the median ratio is what a second worker buys
on this machine. The clients are asyncio connections of one process writing prebuilt requests (a
light load generator: it shares the machine's cores with the workers it measures, and an HTTP
client library costs a sizeable share of what the server spends per answer). They come in one
after another, as a client's pool grows with its load: a keep-alive connection stays with the
worker that accepted it, and connections opened all at once to an idle server are all taken by
the first worker to wake. The table shows how the connections were spread over the two workers.
Answers are counted while every client is busy: from the end of the warm-up until the first client
has had ``--requests-concurrent`` answers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SERVER_LIFETIME_S = 1800


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = {c: frame[c].tolist() for c in frame.columns}
    return [{c: _plain(columns[c][i]) for c in columns} for i in range(len(frame))]


def payloads(
    tables: Any, cutoff: pd.Timestamp, ids: list[str], snapshot: pd.DataFrame
) -> dict[str, list[dict]]:
    """Per customer: the raw-events item (history before the cutoff) and the feature-row item."""
    events: dict[str, dict[str, Any]] = {cid: {"customer_id": cid} for cid in ids}
    wanted = pd.Index(ids, dtype="string")
    for name in ("purchases", "program_events", "support_interactions", "cancellations"):
        table = getattr(tables, name)
        if table is None:
            continue
        part = table[table["customer_id"].isin(wanted) & (table["timestamp"] < cutoff)]
        for cid, group in part.groupby("customer_id", sort=False, observed=True):
            events[str(cid)][name] = _records(group.drop(columns="customer_id"))
    if tables.customers is not None:
        part = tables.customers[tables.customers["customer_id"].isin(wanted)]
        for row in _records(part):
            events[str(row.pop("customer_id"))]["attributes"] = row
    rows = snapshot.loc[ids].astype(object)
    features = [{"customer_id": cid, "features": rec} for cid, rec in zip(ids, _records(rows), strict=True)]
    return {"events": [events[cid] for cid in ids], "features": features}


def measure(client: Any, bodies: list[bytes], n: int, warmup: int) -> dict[str, float]:
    """Latency of ``n`` POST /v1/score requests cycling over ``bodies`` (after ``warmup`` more)."""
    times = []
    for i in range(warmup + n):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
        elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
        if i >= warmup:
            times.append(elapsed)
    ms = np.asarray(times) * 1000
    return {
        "requests": n,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "req_per_s": float(n / (ms.sum() / 1000)),
        "body_kb": float(np.mean([len(b) for b in bodies]) / 1024),
    }


def start_server(model_uri: str, tracking: str, work: Path, workers: int) -> tuple[subprocess.Popen, int, Any]:
    """``churnlens serve`` on a free port of 127.0.0.1, bounded by ``timeout``; returns (process, port, log)."""
    port = free_port()
    log = open(work / f"server-{workers}.log", "w")
    cmd = ["timeout", str(SERVER_LIFETIME_S), sys.executable, "-m", "churnlens.cli.main", "serve",
           "--model", model_uri, "--tracking-uri", tracking, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "CHURNLENS_API_TOKEN"}
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", server)
    except BaseException:
        stop_server(server, log)
        raise
    return server, port, log


def stop_server(server: subprocess.Popen, log: Any) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


async def _post(reader: Any, writer: Any, request: bytes) -> tuple[int, bytes]:
    """One request on a keep-alive connection: its status and body (Content-Length framed)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (line.partition(b":") for line in lines[1:]) if k.lower() == b"content-length")
    return status, await reader.readexactly(length)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``pgrep``; just ``pid`` elsewhere)."""
    out = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return out
    for kid in kids:
        out += process_tree(int(kid))
    return out


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """Seconds the threads of ``pids`` ran, and waited runnable for a CPU (Linux schedstat; 0 elsewhere)."""
    ran = waited = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                fields = stat.read_text().split()
                ran, waited = ran + int(fields[0]), waited + int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
    return ran / 1e9, waited / 1e9


def connections_by_process(port: int) -> list[int]:
    """Established connections to ``port`` per server process (largest first), from ``ss``; [] when unknown."""
    try:
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, timeout=10).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    counts: dict[str, int] = {}
    for line in out.splitlines():
        if "pid=" in line:
            pid = line.split("pid=", 1)[1].split(",", 1)[0]
            counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)


def throughput(
    port: int, bodies: list[bytes], clients: int, per_client: int, warmup: int
) -> tuple[float, list[int], int]:
    """Requests per second of ``clients`` concurrent keep-alive connections, counted while every one
    of them is busy; every answer must be 200. Also returns the connections per server process and
    the number of answers in the whole call.

    The clients come in one after another, as a client's connection pool grows with its load:
    each opens its connection once the previous one has had an answer and keeps sending
    warm-up requests meanwhile. (Connections opened all at once to an idle server are all
    accepted by the first worker to wake, and a keep-alive connection stays with its worker.)
    Counting starts when every client has sent ``warmup`` requests and stops when the first
    client has had ``per_client`` answers: the answers of all clients in that window, over its
    length. (Waiting for the last client instead would time a tail where some connections are
    done and the others' worker serves alone: a measure of the split, not of the server.)
    """
    import asyncio

    def request(body: bytes) -> bytes:
        return (
            f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    prepared = [request(b) for b in bodies]
    counted = [0] * clients
    total = [0]

    async def client(k: int, start: asyncio.Event, stop: asyncio.Event, answered: asyncio.Event,
                     warm: list[int]) -> None:  # fmt: skip
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            sent = 0
            while not stop.is_set():
                status, body = await _post(reader, writer, prepared[(k * per_client + sent) % len(prepared)])
                if status != 200:
                    raise RuntimeError(f"{status}: {body[:200]!r}")
                sent += 1
                total[0] += 1
                answered.set()
                if sent == warmup:
                    warm.append(k)
                if start.is_set() and not stop.is_set():
                    counted[k] += 1
                    if counted[k] == per_client:
                        stop.set()
        finally:
            writer.close()

    async def run() -> tuple[float, list[int], int]:
        start, stop, warm, tasks = asyncio.Event(), asyncio.Event(), [], []
        for k in range(clients):
            answered = asyncio.Event()
            tasks.append(asyncio.create_task(client(k, start, stop, answered, warm)))
            await asyncio.wait_for(answered.wait(), timeout=120)
        deadline = time.monotonic() + 300
        while len(warm) < clients and time.monotonic() < deadline and not any(t.done() for t in tasks):
            await asyncio.sleep(0.005)
        split = await asyncio.to_thread(connections_by_process, port)
        t0 = time.perf_counter()
        start.set()
        await asyncio.wait_for(stop.wait(), timeout=600)
        window = time.perf_counter() - t0
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
        return sum(counted) / window, split, total[0]

    return asyncio.run(run())


CASES = ("features-1", "features-many", "events-1", "events-many", "scale-out")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n", 1)[0].split()), epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--model", help="model URI or path; default: train the benchmarks/scoring.py model")
    parser.add_argument("--tracking-uri")
    parser.add_argument(
        "--customers", type=int, default=5000, help="simulated customers to draw requests from"
    )
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="cases to run (default: all)")
    parser.add_argument("--requests-one", type=int, default=300, help="requests of the one-customer cases")
    parser.add_argument("--requests-many", type=int, default=50, help="requests of the many-customer cases")
    parser.add_argument("--batch", type=int, default=100, help="customers per 'many' request")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--lang", choices=["en", "fr"], default="fr", help="language of the reasons")
    parser.add_argument("--reasons", type=int, default=3, help="reasons per customer")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the scale-out case")
    parser.add_argument("--requests-concurrent", type=int, default=100,
                        help="scale-out rounds end when one client has had this many answers")
    parser.add_argument("--rounds", type=int, default=5, help="turns of 1 and 2 workers in the scale-out case")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    import httpx

    from churnlens.features import build_snapshot
    from churnlens.serving import default_cutoff, load_model
    from churnlens.serving.batch import model_feature_config
    from churnlens.simulate import simulate

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="churnlens-api-bench-"))
    if args.model:
        model_uri, tracking = args.model, args.tracking_uri or f"sqlite:///{work / 'unused.db'}"
        loaded = load_model(model_uri, tracking_uri=tracking)
    else:
        loaded = _module("bench_scoring", HERE / "scoring.py").train("sim", work)
        model_uri, tracking = str(work / "model"), f"sqlite:///{work / 'unused.db'}"
    model = loaded.model
    tables = simulate(args.customers, months=24, seed=7).tables
    cutoff = default_cutoff(tables)
    snapshot = build_snapshot(tables, cutoff, model_feature_config(model))
    rng = np.random.default_rng(0)
    n_many = 3 * args.batch
    # a different customer in every one-customer request, as far as the base allows
    n_one = max(min(len(snapshot) - n_many, args.requests_one + args.warmup), 1)
    ids = rng.choice(np.asarray(snapshot.index, dtype=object), size=n_one + n_many, replace=False).tolist()
    items = payloads(tables, cutoff, ids, snapshot)
    common = {"cutoff": str(cutoff.date()), "lang": args.lang, "reasons": args.reasons}

    def bodies(kind: str, size: int) -> list[bytes]:
        pool = items[kind][:n_one] if size == 1 else items[kind][n_one:]
        groups = [pool[i : i + size] for i in range(0, len(pool) - size + 1, size)]
        return [json.dumps({**common, "customers": g}).encode() for g in groups]

    rows = []
    rounds: list[dict[str, float]] = []
    latency = [c for c in CASES[:4] if c in args.cases]
    if latency:
        server, port, log = start_server(model_uri, tracking, work, 1)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                for case in latency:
                    kind, many = case.split("-")
                    size, n = (1, args.requests_one) if many == "1" else (args.batch, args.requests_many)
                    stats = measure(client, bodies(kind, size), n, args.warmup)
                    rows.append({"case": case, "input": kind, "customers_per_request": size, **stats})
        finally:
            stop_server(server, log)
    if "scale-out" in args.cases:
        # both servers up at once, measured in turns: the load of a shared machine moves within
        # seconds, so each round's ratio compares two measurements taken a few seconds apart
        servers = {w: start_server(model_uri, tracking, work, w) for w in (1, 2)}
        try:
            pids = {w: process_tree(servers[w][0].pid) for w in (1, 2)}
            for _ in range(args.rounds):
                row: dict[str, Any] = {}
                for w in (1, 2):
                    ran, waited = cpu_seconds(pids[w])
                    t0 = time.perf_counter()
                    rate, split, served = throughput(servers[w][1], bodies("features", 1), args.clients,
                                                     args.requests_concurrent, args.warmup)  # fmt: skip
                    elapsed = time.perf_counter() - t0
                    ran2, waited2 = cpu_seconds(pids[w])
                    row[str(w)] = rate
                    row[f"cores_{w}"] = (ran2 - ran) / elapsed  # CPUs the server's processes used
                    row[f"wait_ms_{w}"] = 1000 * (waited2 - waited) / served  # runnable, waiting for a CPU
                    row[f"split_{w}"] = "/".join(map(str, split)) or "?"
                row["ratio"] = row["2"] / row["1"]
                rounds.append(row)
        finally:
            for server, _, log in servers.values():
                stop_server(server, log)

    trees = model.booster.num_trees()
    load_end = os.getloadavg()[0]
    print(
        f"\nchurnlens serve on 127.0.0.1, {started}; model: {trees} trees, {len(model.features)} features; "
        f"{args.reasons} reasons in {args.lang!r}; {os.cpu_count()} CPUs; load average {load_start:.1f} at the "
        f"start, {load_end:.1f} at the end"
    )
    if rows:
        print("\none worker, one keep-alive client (targets: events-1 p99 <= 20 ms, features-1 p99 <= 8 ms)")
        header = (
            f"{'case':<14} {'customers':>9} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
            f"{'req/s':>7} {'body KB':>8}"
        )
        print(header)
        for r in rows:
            print(
                f"{r['case']:<14} {r['customers_per_request']:>9} {r['requests']:>8} {r['p50_ms']:>8.1f} "
                f"{r['p99_ms']:>8.1f} {r['mean_ms']:>8.1f} {r['req_per_s']:>7.1f} {r['body_kb']:>8.1f}"
            )
    if rounds:
        print(f"\nscale-out: {args.clients} concurrent clients, counted until one has had {args.requests_concurrent} "
              "answers; 1 customer as feature rows per request, --workers 1 and 2 in turns (target: ratio >= 1.6)")
        print("(cores: CPUs the server's processes used; wait: ms per request they were runnable but waiting for a "
              "CPU, i.e. the machine was busy; split: connections per worker)")
        print(f"{'round':>7} {'1 worker req/s':>15} {'cores':>6} {'wait':>6} {'2 workers req/s':>16} {'cores':>6} "
              f"{'wait':>6} {'split':>6} {'ratio':>6}")
        for k, r in enumerate(rounds, start=1):
            print(f"{k:>7} {r['1']:>15.1f} {r['cores_1']:>6.2f} {r['wait_ms_1']:>6.2f} {r['2']:>16.1f} "
                  f"{r['cores_2']:>6.2f} {r['wait_ms_2']:>6.2f} {r['split_2']:>6} {r['ratio']:>6.2f}")
        one, two = (float(np.median([r[w] for r in rounds])) for w in ("1", "2"))
        cores = [float(np.median([r[f"cores_{w}"] for r in rounds])) for w in (1, 2)]
        print(f"{'median':>7} {one:>15.1f} {cores[0]:>6.2f} {'':>6} {two:>16.1f} {cores[1]:>6.2f} {'':>6} {'':>6} "
              f"{two / one:>6.2f}")
    if args.json:
        throughput_figures = rounds or None
        args.json.write_text(json.dumps({"trees": trees, "rows": rows, "lang": args.lang, "started": started,
                                         "load_average": [load_start, load_end],
                                         "throughput": throughput_figures}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
