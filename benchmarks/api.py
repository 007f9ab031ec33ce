"""Latency of the HTTP API (``churnlens serve``) on 127.0.0.1: p50/p99 for 1 and 100 customers per
request, given as ready features and as raw events, over a bounded loop.

Run:  python benchmarks/api.py                       (the benchmarks/scoring.py model: 500 trees x 15 leaves)
      python benchmarks/api.py --model PATH_OR_URI   (an existing model; --tracking-uri as for serve)
      python benchmarks/api.py --requests-one 300 --requests-many 50

The server is a real uvicorn process (one worker) started with ``churnlens serve`` under
``timeout`` and stopped at the end; the client is one keep-alive ``httpx.Client``. Each
request asks for 3 reasons in English, so it includes feature building (raw events),
prediction, calibration and exact TreeSHAP. Requests rotate over different customers.
The first ``--warmup`` requests of each case are not counted.
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
    common = {"cutoff": str(cutoff.date()), "lang": "en", "reasons": 3}

    def bodies(kind: str, size: int) -> list[bytes]:
        pool = items[kind][:n_one] if size == 1 else items[kind][n_one:]
        groups = [pool[i : i + size] for i in range(0, len(pool) - size + 1, size)]
        return [json.dumps({**common, "customers": g}).encode() for g in groups]

    port = free_port()
    log = open(work / "server.log", "w")
    cmd = [
        "timeout",
        str(SERVER_LIFETIME_S),
        sys.executable,
        "-m",
        "churnlens.cli.main",
        "serve",
        "--model",
        model_uri,
        "--tracking-uri",
        tracking,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {k: v for k, v in os.environ.items() if k != "CHURNLENS_API_TOKEN"}
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env)
    rows = []
    try:
        wait_for(f"http://127.0.0.1:{port}/health", server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for kind in ("features", "events"):
                for size, n in ((1, args.requests_one), (args.batch, args.requests_many)):
                    stats = measure(client, bodies(kind, size), n, args.warmup)
                    rows.append({"input": kind, "customers_per_request": size, **stats})
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

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
    if args.json:
        args.json.write_text(json.dumps({"trees": trees, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
