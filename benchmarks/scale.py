"""Scale-out benchmark: the snapshot of a generated base, local engine vs Dask, wall time and peak memory.

Run:  python benchmarks/scale.py                       (1M customers, local and Dask)
      python benchmarks/scale.py --customers 1000000 5000000 --local-max 1000000
      python benchmarks/scale.py --quick                (50k customers, a smoke run)
      python benchmarks/scale.py --task score           (batch scoring instead of the snapshot)

Data: the vectorised generator of ``benchmarks/features.py`` (per customer ~50 purchases,
~20 program events, ~5 support contacts, all five tables), written as partitioned Parquet
(one file per million customers, ids made unique per file) in a scratch directory.

Each engine runs in a fresh subprocess, from the Parquet files to the snapshot written as
Parquet, so the figures include reading, validation and writing:

- ``local``: ``load_tables`` + ``build_snapshot`` + one Parquet file, in one process;
- ``dask``: a 2-worker LocalCluster (one thread each, 127.0.0.1), ``stage_tables`` (read in
  chunks, shuffle into customer buckets through disk, validate per bucket) +
  ``snapshot_to_parquet`` (the local ``build_snapshot`` per bucket).

With ``--task score`` a model is first trained (``train_model``, 100 rounds) on a separate
generated base of 20k customers, then each engine scores the whole base at the cutoff with
top-10,000 targeting (reasons for the selected): ``score_base`` + ``write_outputs`` locally,
``stage_tables`` + ``score_on_dask`` on Dask.

Peak memory is each process's high-water mark of resident memory (``VmHWM`` in
``/proc/<pid>/status``, exact, not sampled): for Dask the largest worker, and the client.
Every run has a wall-time limit (``--timeout``); a run that exceeds it is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
CUTOFF = "2024-10-01"
CHUNK = 1_000_000


def peak_rss_gb() -> float:
    """High-water mark of this process's resident memory, GB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def write_base(n_customers: int, out: Path, seed: int = 1) -> dict[str, int]:
    """Generate ``n_customers`` in chunks of 1M and write each table as a Parquet directory."""
    sys.path.insert(0, str(HERE))
    from features import generate_tables  # the benchmark generator (same dtypes as the contract)

    rows: dict[str, int] = {}
    for k, start in enumerate(range(0, n_customers, CHUNK)):
        n = min(CHUNK, n_customers - start)
        tables = generate_tables(n, seed=seed + k)
        for name, frame in tables.present().items():
            ids = pa.array(frame["customer_id"].array)
            if k:  # G0000001 -> 1000001 ...: unique across chunks, still sorted within a chunk
                frame = frame.assign(customer_id=pc.utf8_replace_slice(ids, 0, 1, f"{k:d}").to_pandas())
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(folder / f"part-{k:03d}.parquet", index=False)
            rows[name] = rows.get(name, 0) + len(frame)
        del tables
    return rows


def run_local(data: str, out: str) -> dict[str, float]:
    """Child process: the local engine."""
    from churnlens.data import load_tables
    from churnlens.features import build_snapshot

    t0 = time.perf_counter()
    tables, _ = load_tables(data)
    t1 = time.perf_counter()
    snap = build_snapshot(tables, CUTOFF)
    snap.reset_index().to_parquet(Path(out) / "snapshot.parquet", index=False)
    t2 = time.perf_counter()
    return {"wall_s": t2 - t0, "load_s": t1 - t0, "snapshot_s": t2 - t1, "rows": len(snap),
            "peak_client_gb": peak_rss_gb(), "peak_worker_gb": float("nan")}  # fmt: skip


def run_dask(data: str, out: str, workers: int, partitions: int | None) -> dict[str, float]:
    """Child process: the Dask engine on a LocalCluster."""
    from churnlens.engine import dask_client, snapshot_to_parquet, stage_tables

    with dask_client(n_workers=workers) as client:
        t0 = time.perf_counter()
        staged = stage_tables(client, data, Path(out) / "work", n_buckets=partitions)
        t1 = time.perf_counter()
        rows = snapshot_to_parquet(client, staged, CUTOFF, Path(out) / "snapshot")
        t2 = time.perf_counter()
        peaks = client.run(peak_rss_gb)
    return {"wall_s": t2 - t0, "load_s": t1 - t0, "snapshot_s": t2 - t1, "rows": rows,
            "partitions": staged.n_buckets, "peak_worker_gb": max(peaks.values()),
            "peak_client_gb": peak_rss_gb()}  # fmt: skip


TOP = 10_000


def run_local_score(data: str, out: str, tracking: str) -> dict[str, float]:
    """Child process: local batch scoring."""
    from churnlens.data import load_tables
    from churnlens.serving import load_model, score_base, write_outputs

    t0 = time.perf_counter()
    tables, _ = load_tables(data)
    t1 = time.perf_counter()
    result = score_base(tables, CUTOFF, load_model(tracking_uri=tracking), top=TOP)
    write_outputs(result, Path(out) / "campaign.parquet")
    t2 = time.perf_counter()
    return {"wall_s": t2 - t0, "load_s": t1 - t0, "snapshot_s": t2 - t1, "rows": len(result.campaign),
            "peak_client_gb": peak_rss_gb(), "peak_worker_gb": float("nan")}  # fmt: skip


def run_dask_score(
    data: str, out: str, tracking: str, workers: int, partitions: int | None
) -> dict[str, float]:
    """Child process: batch scoring on a LocalCluster."""
    from churnlens.engine import dask_client, score_on_dask, stage_tables
    from churnlens.serving import load_model

    with dask_client(n_workers=workers) as client:
        t0 = time.perf_counter()
        staged = stage_tables(client, data, Path(out) / "work", n_buckets=partitions)
        t1 = time.perf_counter()
        loaded = load_model(tracking_uri=tracking)
        summary = score_on_dask(
            client, staged, Path(out) / "campaign", loaded, cutoff=CUTOFF, top=TOP
        )
        t2 = time.perf_counter()
        peaks = client.run(peak_rss_gb)
    return {"wall_s": t2 - t0, "load_s": t1 - t0, "snapshot_s": t2 - t1, "rows": summary.scored,
            "partitions": staged.n_buckets, "peak_worker_gb": max(peaks.values()),
            "peak_client_gb": peak_rss_gb()}  # fmt: skip


def train_reference_model(scratch: Path) -> str:
    """A model for ``--task score``, trained on a separate 20k generated base; its tracking URI."""
    from churnlens.config import LightGBMParams
    from churnlens.data import load_tables
    from churnlens.training import TrainConfig, train_model

    write_base(20_000, scratch / "train", seed=11)  # seed 99 hits a generator bug (year -10013)
    tables, _ = load_tables(scratch / "train")
    uri = f"sqlite:///{scratch / 'mlflow.db'}"
    train_model(tables, tracking_uri=uri, train_config=TrainConfig(lgbm=LightGBMParams(max_rounds=100)))
    return uri


def child(args: argparse.Namespace) -> None:
    if args.task == "score":
        if args.child == "local":
            result = run_local_score(args.data, args.out, args.tracking)
        else:
            result = run_dask_score(args.data, args.out, args.tracking, args.workers, args.partitions)
    elif args.child == "local":
        result = run_local(args.data, args.out)
    else:
        result = run_dask(args.data, args.out, args.workers, args.partitions)
    print("RESULT " + json.dumps(result), flush=True)


def measure(engine: str, data: Path, out: Path, args: argparse.Namespace) -> dict[str, float | str]:
    """Run one engine in a fresh process, bounded by ``--timeout``."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", engine, "--data", str(data), "--out", str(out),
           "--workers", str(args.workers), "--task", args.task]  # fmt: skip
    if args.tracking:
        cmd += ["--tracking", args.tracking]
    if args.partitions:
        cmd += ["--partitions", str(args.partitions)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {args.timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"status": "ok", **json.loads(line[7:])}
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"status": f"failed ({done.returncode}): {' | '.join(tail)}"}


def same_snapshot(local_out: Path, dask_out: Path) -> bool:
    """Whether both engines wrote the same snapshot (rows, columns, values, dtypes)."""
    import pandas as pd

    from churnlens.engine import read_snapshot
    from churnlens.engine.dask_features import apply_levels, categorical_levels

    local = pd.read_parquet(local_out / "snapshot.parquet")
    local = local.set_index(pd.Index(local.pop("customer_id").astype("string"), name="customer_id"))
    local = apply_levels(local, categorical_levels(local))  # Parquet gives levels back as str
    dask = read_snapshot(dask_out / "snapshot")
    try:
        pd.testing.assert_frame_equal(dask, local, check_categorical=True)
    except AssertionError as exc:
        print(f"  snapshots differ: {str(exc)[:300]}")
        return False
    return True


def same_campaign(local_out: Path, dask_out: Path) -> bool:
    """Whether both engines wrote the same campaign list (every scored customer, in rank order)."""
    import pandas as pd

    from churnlens.engine import read_campaign
    from churnlens.engine.dask_scoring import as_local_campaign

    local = as_local_campaign(pd.read_parquet(local_out / "campaign.parquet"))
    try:
        pd.testing.assert_frame_equal(read_campaign(dask_out / "campaign"), local)
    except AssertionError as exc:
        print(f"  campaigns differ: {str(exc)[:300]}")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument(
        "--local-max",
        type=int,
        default=1_000_000,
        help="run the local engine only up to this many customers (memory)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=None, help="customer buckets (default: by size)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per engine run")
    parser.add_argument("--quick", action="store_true", help="50k customers")
    parser.add_argument("--task", choices=["snapshot", "score"], default="snapshot")
    parser.add_argument("--tracking", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--child", choices=["local", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [50_000] if args.quick else args.customers
    print(f"load average at start: {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()}")
    rows_out = []
    for n in sizes:
        scratch = Path(tempfile.mkdtemp(prefix=f"churnlens-scale-{n}-"))
        try:
            t0 = time.perf_counter()
            rows = write_base(n, scratch / "data")
            print(
                f"[{n:,} customers] generated {sum(rows.values()):,} rows in {time.perf_counter() - t0:.0f} s"
            )
            if args.task == "score":
                t0 = time.perf_counter()
                args.tracking = train_reference_model(scratch)
                print(f"trained the reference model in {time.perf_counter() - t0:.0f} s")
            engines = ["local", "dask"] if n <= args.local_max else ["dask"]
            results = {e: measure(e, scratch / "data", scratch / e, args) for e in engines}
            if all(r.get("status") == "ok" for r in results.values()) and len(results) == 2:
                same = same_campaign if args.task == "score" else same_snapshot
                results["dask"]["equal"] = same(scratch / "local", scratch / "dask")
            for engine, r in results.items():
                rows_out.append({"engine": engine, "customers": n, **r})
                print(json.dumps(rows_out[-1]), flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print(f"task: {args.task}")
    header = (f"{'engine':<7} {'customers':>10} {'wall s':>8} {'load+stage s':>13} {args.task + ' s':>11} "
              f"{'partitions':>10} {'peak worker GB':>15} {'peak client GB':>15}  status")  # fmt: skip
    print(header)
    for r in rows_out:
        if r["status"] != "ok":
            print(f"{r['engine']:<7} {r['customers']:>10,} {'':>71}  {r['status']}")
            continue
        print(f"{r['engine']:<7} {r['customers']:>10,} {r['wall_s']:>8.1f} {r['load_s']:>13.1f} "
              f"{r['snapshot_s']:>11.1f} {str(r.get('partitions', '-')):>10} {r['peak_worker_gb']:>15.2f} "
              f"{r['peak_client_gb']:>15.2f}  ok"
              + ("" if "equal" not in r else f", equal to local: {r['equal']}"))  # fmt: skip


if __name__ == "__main__":
    main()
