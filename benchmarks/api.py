"""Latency of the HTTP API (``churnlens serve``) on 127.0.0.1: p50/p99 for 1 and 100 customers per
request, given as ready features and as raw events, over a bounded loop.

Run:  python benchmarks/api.py                       (the benchmarks/scoring.py model: 500 trees x 15 leaves)
      python benchmarks/api.py --model PATH_OR_URI   (an existing model; --tracking-uri as for serve)
      python benchmarks/api.py --requests-one 300 --requests-many 50 --lang fr

Latency: a real uvicorn process (``churnlens serve``, one worker) under ``timeout``, stopped at
the end; the client is one keep-alive ``httpx.Client``. Each request asks for 3 reasons (in
French by default), so it includes feature building (raw events), prediction, calibration and
exact TreeSHAP. Requests rotate over different customers. The first ``--warmup`` requests of
each case are not counted.

Scale-out: the throughput of ``--clients`` concurrent clients (threads, one keep-alive client
each, one customer as feature rows per request) against ``serve --workers 1`` and then
``--workers 2``, in the same run; the ratio is what a second worker buys on this machine.
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


def throughput(port: int, bodies: list[bytes], clients: int, per_client: int, warmup: int) -> float:
    """Requests per second of ``clients`` threads each sending ``per_client`` requests (after ``warmup``)."""
    import threading

    import httpx

    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def run(k: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for i in range(warmup):
                client.post("/v1/score", content=bodies[(k + i) % len(bodies)],
                            headers={"content-type": "application/json"})
            barrier.wait(timeout=300)
            for i in range(per_client):
                r = client.post("/v1/score", content=bodies[(k * per_client + i) % len(bodies)],
                                headers={"content-type": "application/json"})
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    return

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=300)
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return clients * per_client / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model URI or path; default: train the benchmarks/scoring.py model")
    parser.add_argument("--tracking-uri")
    parser.add_argument(
        "--customers", type=int, default=5000, help="simulated customers to draw requests from"
    )
    parser.add_argument("--requests-one", type=int, default=300)
    parser.add_argument("--requests-many", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100, help="customers per 'many' request")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--lang", choices=["en", "fr"], default="fr", help="language of the reasons")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the scale-out case")
    parser.add_argument("--requests-concurrent", type=int, default=150, help="requests per concurrent client")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    import httpx

    from churnlens.features import build_snapshot
    from churnlens.serving import default_cutoff, load_model
    from churnlens.serving.batch import model_feature_config
    from churnlens.simulate import simulate

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
    n_one = min(len(snapshot), 200)
    ids = rng.choice(
        np.asarray(snapshot.index, dtype=object), size=n_one + 3 * args.batch, replace=False
    ).tolist()
    items = payloads(tables, cutoff, ids, snapshot)
    common = {"cutoff": str(cutoff.date()), "lang": args.lang, "reasons": 3}

    def bodies(kind: str, size: int) -> list[bytes]:
        pool = items[kind][:n_one] if size == 1 else items[kind][n_one:]
        groups = [pool[i : i + size] for i in range(0, len(pool) - size + 1, size)]
        return [json.dumps({**common, "customers": g}).encode() for g in groups]

    rows = []
    server, port, log = start_server(model_uri, tracking, work, 1)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for kind in ("features", "events"):
                for size, n in ((1, args.requests_one), (args.batch, args.requests_many)):
                    stats = measure(client, bodies(kind, size), n, args.warmup)
                    rows.append({"input": kind, "customers_per_request": size, **stats})
        one_worker = throughput(port, bodies("features", 1), args.clients, args.requests_concurrent, args.warmup)
    finally:
        stop_server(server, log)
    server, port, log = start_server(model_uri, tracking, work, 2)
    try:
        two_workers = throughput(port, bodies("features", 1), args.clients, args.requests_concurrent, args.warmup)
    finally:
        stop_server(server, log)

    trees = model.booster.num_trees()
    print(f"\nmodel: {trees} trees, {len(model.features)} features; load average {os.getloadavg()[0]:.1f}")
    header = (
        f"{'input':<9} {'customers':>9} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'req/s':>7} {'body KB':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['input']:<9} {r['customers_per_request']:>9} {r['requests']:>8} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['mean_ms']:>8.1f} {r['req_per_s']:>7.1f} {r['body_kb']:>8.1f}"
        )
    print(f"\nscale-out, {args.clients} concurrent clients, 1 customer as features per request "
          f"({os.cpu_count()} CPUs):")
    print(f"{'workers':>7} {'req/s':>8} {'ratio':>6}")
    print(f"{1:>7} {one_worker:>8.1f} {1.0:>6.2f}")
    print(f"{2:>7} {two_workers:>8.1f} {two_workers / one_worker:>6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"trees": trees, "rows": rows, "lang": args.lang,
                                         "throughput": {"1": one_worker, "2": two_workers}}, indent=1))


if __name__ == "__main__":
    main()
