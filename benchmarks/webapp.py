"""Page times of the web app (``churnlens serve --campaign``) on a 1M-customer campaign, on 127.0.0.1.

Run:  python benchmarks/webapp.py                          (1M customers; the benchmarks/scoring.py model)
      python benchmarks/webapp.py --customers 200000 --model PATH_OR_URI

How the campaign is made (cheaply, no model is trained on 1M customers): a simulation of
``--real`` customers is scored for real (``score_base``, every customer explained) and
written with its data directory; the list is then grown to ``--customers`` rows by drawing
scored rows again at random (with their reasons) under new ids, and ranked again. Cards are
asked for real customers only (their data exists); the list's pages, filters and search run
over all rows. The server is a real uvicorn process (one worker) with ``CHURNLENS_API_TOKEN``
set, under ``timeout``; the client logs in through the form and keeps one connection.

Each case is the median (and 95th percentile) of ``--repeats`` requests after one warm-up,
except the "first" rows (one request on a cold cache). Reference in the same run: the same
filtered, sorted page computed the obvious way with pandas (boolean filter, ``sort_values``,
``head``) on the same rows in this process, and ``GET /health`` (the floor of any request).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SERVER_LIFETIME_S = 3600
TOKEN = "bench-token"


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def grow_campaign(result: Any, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The real campaign and ``n - len(real)`` rows drawn from it (reasons too) under new ids, ranked again."""
    campaign, reasons = result.campaign, result.reasons
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(campaign), max(n - len(campaign), 0))
    new_ids = pd.array([f"S{i:07d}" for i in range(len(picks))], dtype="string")
    drawn = campaign.iloc[picks].assign(customer_id=new_ids)
    grown = pd.concat([campaign, drawn], ignore_index=True)
    order = np.lexsort((grown["customer_id"].to_numpy(dtype=str), -grown["churn_probability"].to_numpy()))
    rank = np.empty(len(grown), dtype=np.int64)
    rank[order] = np.arange(1, len(grown) + 1)
    share = result.summary.selected / max(len(campaign), 1)
    grown = grown.assign(rank=rank, selected=rank <= int(round(share * len(grown))))
    mapping = pd.DataFrame({"source": campaign["customer_id"].to_numpy()[picks], "customer_id": new_ids})
    copied = mapping.merge(reasons.rename(columns={"customer_id": "source"}), on="source").drop(columns="source")
    all_reasons = pd.concat([reasons, copied[reasons.columns]], ignore_index=True)
    return grown.sort_values("rank", kind="stable").reset_index(drop=True), all_reasons


def write_grown(result: Any, campaign: pd.DataFrame, reasons: pd.DataFrame, folder: Path, data: Path) -> None:
    """The grown campaign as ``churnlens score`` writes one: list, reasons and summary."""
    folder.mkdir(parents=True, exist_ok=True)
    campaign.to_parquet(folder / "big.parquet", index=False)
    reasons.to_parquet(folder / "big.reasons.parquet", index=False)
    summary = result.summary.to_dict()
    summary.update(
        scored=len(campaign), selected=int(campaign["selected"].sum()), data_source=str(data),
        bands={b: int((campaign["risk_band"] == b).sum()) for b in ("high", "medium", "low")},
    )  # fmt: skip
    (folder / "big.summary.json").write_text(json.dumps(summary, default=str))


def login(client: Any) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"csrf": csrf, "token": TOKEN, "next": "/"})
    if answer.status_code != 303:
        raise RuntimeError(f"login failed: {answer.status_code}")


def get_ms(client: Any, path: str) -> tuple[float, Any]:
    t0 = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    return elapsed, response


def repeated(client: Any, paths: list[str], repeats: int) -> dict[str, float]:
    """Median and p95 of ``repeats`` GETs cycling over ``paths`` (after one warm-up of each)."""
    for path in paths:
        get_ms(client, path)
    times = [get_ms(client, paths[i % len(paths)])[0] for i in range(repeats)]
    return {"p50_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)), "n": repeats}


def rss_mb(pid: int) -> float:
    """Resident memory of the server's Python process (the child of ``timeout``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    target = int(children[0]) if children else pid
    for line in Path(f"/proc/{target}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="rows of the campaign list")
    parser.add_argument("--real", type=int, default=20_000, help="simulated customers scored for real")
    parser.add_argument("--model", help="model URI or path; default: train the benchmarks/scoring.py model")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--cards", type=int, default=20, help="distinct customers whose card is timed")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    import httpx

    from churnlens.data.io import write_tables
    from churnlens.serving import load_model, score_base
    from churnlens.serving.webapp.campaigns import find_campaigns, load_campaign
    from churnlens.simulate import simulate

    work = Path(tempfile.mkdtemp(prefix="churnlens-webapp-bench-"))
    if args.model:
        model_uri, tracking = args.model, args.tracking_uri or f"sqlite:///{work / 'unused.db'}"
        loaded = load_model(model_uri, tracking_uri=tracking)
    else:
        loaded = _module("bench_scoring", HERE / "scoring.py").train("sim", work)
        model_uri, tracking = str(work / "model"), f"sqlite:///{work / 'unused.db'}"
    data = work / "data"
    write_tables(simulate(args.real, months=24, seed=7).tables, data, fmt="parquet")
    from churnlens.data import load_tables

    tables, _ = load_tables(data)
    t0 = time.perf_counter()
    result = score_base(tables, None, loaded, lang="fr", explain_all=True, source=str(data))
    print(f"(scored {len(result.campaign):,} real customers in {time.perf_counter() - t0:.0f} s)", flush=True)
    campaign, reasons = grow_campaign(result, args.customers, seed=1)
    folder = work / "campaigns"
    write_grown(result, campaign, reasons, folder, data)
    t0 = time.perf_counter()
    load_campaign(find_campaigns(folder)[0])
    load_s = time.perf_counter() - t0

    real = result.campaign
    riskiest = real.sort_values("rank")["customer_id"]
    counts = campaign["risk_band"].value_counts()
    band = "high" if counts.get("high", 0) >= 1000 else "medium"  # a band with rows to page through
    prefix = str(real["customer_id"].iloc[0])[:-2]
    port = _module("bench_api", HERE / "api.py").free_port()
    cmd = ["timeout", str(SERVER_LIFETIME_S), sys.executable, "-m", "churnlens.cli.main", "serve",
           "--campaign", str(folder), "--model", model_uri, "--tracking-uri", tracking, "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]  # fmt: skip
    log = open(work / "server.log", "w")
    env = {**os.environ, "CHURNLENS_API_TOKEN": TOKEN}
    t0 = time.perf_counter()
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env)
    rows: list[dict[str, Any]] = []
    try:
        _module("bench_api2", HERE / "api.py").wait_for(f"http://127.0.0.1:{port}/health", server, timeout=900)
        startup_s = time.perf_counter() - t0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            login(client)
            base = "/?campaign=big"
            filtered = base + f"&band={band}&selected=yes&family=purchases"
            by_risk = base + f"&band={band}&sort=value_at_risk"

            def once(case: str, path: str) -> None:
                ms, response = get_ms(client, path)
                rows.append({"case": case, "p50_ms": ms, "p95_ms": ms, "n": 1, "bytes": len(response.content)})

            def many(case: str, paths: list[str]) -> None:
                rows.append({"case": case, **repeated(client, paths, args.repeats)})

            once("first page, first request after start", base)
            many("first page", [base])
            once(f"filtered page (band {band}, selected, family purchases), first", filtered)
            many(f"filtered page (band {band}, selected, family purchases)", [filtered])
            once(f"sorted by value at risk (band {band}), first sort", by_risk)
            many(f"sorted by value at risk (band {band})", [by_risk])
            many("sorted by value at risk (all rows)", [base + "&sort=value_at_risk"])
            many("filtered page (band low), page 2", [base + "&band=low&page=2"])
            many("page 10,000 of the list", [base + "&page=10000"])
            many(f"search: id prefix '{prefix}'", [base + f"&q={prefix}"])
            many("search: id prefix 'S00042' (10 rows)", [base + "&q=S00042"])
            cards = [f"/customer/{cid}?campaign=big" for cid in riskiest.head(args.cards)]
            card_times = [get_ms(client, path)[0] for path in cards]
            rows.append({"case": f"customer card ({len(cards)} customers, each once)",
                         "p50_ms": float(np.median(card_times)), "p95_ms": float(np.percentile(card_times, 95)),
                         "n": len(cards)})  # fmt: skip
            ms, response = get_ms(client, f"/export.csv?campaign=big&band={band}")
            rows.append({"case": f"CSV download, band {band} ({response.text.count(chr(10)) - 1:,} rows)",
                         "p50_ms": ms, "p95_ms": ms, "n": 1})  # fmt: skip
            ms, response = get_ms(client, "/export.csv?campaign=big&q=S00")
            rows.append({"case": f"CSV download, ids starting S00 ({response.text.count(chr(10)) - 1:,} rows)",
                         "p50_ms": ms, "p95_ms": ms, "n": 1})  # fmt: skip
            many("GET /health (floor)", ["/health"])
            memory = rss_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    # reference: the filtered, sorted page the obvious way, with pandas, on the same rows
    frame = campaign

    def pandas_page() -> pd.DataFrame:
        keep = (frame["risk_band"] == band).to_numpy()
        return frame[keep].sort_values(["value_at_risk", "rank"], ascending=[False, True]).head(50)

    pandas_page()
    times = []
    for _ in range(args.repeats):
        t1 = time.perf_counter()
        pandas_page()
        times.append((time.perf_counter() - t1) * 1000)
    reference = float(np.median(times))
    rows.append({"case": "reference: same sorted page in pandas, in process", "p50_ms": reference,
                 "p95_ms": float(np.percentile(times, 95)), "n": args.repeats})  # fmt: skip

    print(f"\nWeb app on a {len(campaign):,}-customer campaign ({len(real):,} real, {len(reasons):,} reasons); "
          f"campaign load {load_s:.1f} s, server start to ready {startup_s:.1f} s, server RSS {memory:,.0f} MB\n")
    print("| case | p50 ms | p95 ms | requests | p50 / pandas reference |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['n']} | "
              f"{row['p50_ms'] / reference:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"customers": len(campaign), "real": len(real), "load_s": load_s,
                                         "startup_s": startup_s, "rss_mb": memory, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
