"""Benchmark the simulator: wall time and peak memory of simulate() and of the ground truth.

Each measurement runs in a fresh subprocess, which reports its own wall time and peak
resident memory (``ru_maxrss``), so sizes do not inherit each other's memory.

    python benchmarks/simulate.py                       # 20k and 200k customers, truth for 20k
    python benchmarks/simulate.py --sizes 20000,1000000 --truth-size 20000
    # past campaigns at the scale uplift modelling needs, against simulate() without them:
    python benchmarks/simulate.py --sizes 80000 --truth-size 0 --campaigns 6 --campaign-size 8000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table


def worker(kind: str, n: int, months: int, draws: int, campaigns: int = 0, campaign_size: int = 5000) -> None:
    """Run one measurement in this process and print it as JSON."""
    import pandas as pd

    from churnlens.simulate import CampaignSettings, simulate, simulate_uplift_table

    settings = CampaignSettings(n_campaigns=campaigns, size=campaign_size) if kind == "campaigns" else None
    t0, c0 = time.perf_counter(), time.process_time()
    sim = simulate(n, months=months, seed=0, campaigns=settings)
    sim_s, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = sum(len(t) for t in sim.tables.present().values())
    result = {"kind": kind, "n": n, "months": months, "sim_s": sim_s, "sim_cpu": sim_cpu, "rows": rows}
    if kind == "truth":
        cutoff = sim.tables.data_end.floor("D") + pd.Timedelta(days=1) - pd.Timedelta(days=90)
        t1, c1 = time.perf_counter(), time.process_time()
        truth = sim.truth_fn(cutoff, 90, draws=draws)
        result["truth_s"] = time.perf_counter() - t1
        result["truth_cpu"] = time.process_time() - c1
        result["truth_rows"] = len(truth)
        from sklearn.metrics import roc_auc_score

        result["oracle_auc"] = float(roc_auc_score(truth.no_purchase.astype(bool), truth.p_no_purchase))
        result["churn_rate"] = float(truth.no_purchase.astype(float).mean())
    if kind == "campaigns":
        t1, c1 = time.perf_counter(), time.process_time()
        uplift = simulate_uplift_table(sim, draws=draws)
        result["uplift_s"] = time.perf_counter() - t1
        result["uplift_cpu"] = time.process_time() - c1
        result["contacted"] = len(uplift)
        result["min_contacted"] = int(uplift.groupby("campaign_id").size().min())
        result["control"] = int((uplift.group == "control").sum())
        gain = uplift.p_churn_if_untreated - uplift.p_churn_if_treated
        result["uplift_by_action"] = {k: float(v) for k, v in gain.groupby(uplift.action).mean().items()}
        result["actions"] = {k: int(v) for k, v in uplift.action.value_counts().items()}
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps(result))


def measure(
    kind: str, n: int, months: int, draws: int, campaigns: int = 0, campaign_size: int = 5000
) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--n",
        str(n),
        "--months",
        str(months),
        "--draws",
        str(draws),
        "--campaigns",
        str(campaigns),
        "--campaign-size",
        str(campaign_size),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="20000,200000", help="Comma-separated customer counts to simulate."
    )
    parser.add_argument(
        "--truth-size", type=int, default=20_000, help="Customers for the truth timing (0 = skip)."
    )
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--draws", type=int, default=256)
    parser.add_argument(
        "--campaigns",
        type=int,
        default=0,
        help="Also time N past campaigns and their true uplift (per size).",
    )
    parser.add_argument("--campaign-size", type=int, default=5000, help="Customers selected per campaign.")
    parser.add_argument("--worker", choices=["sim", "truth", "campaigns"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.months, args.draws, args.campaigns, args.campaign_size)
        return

    console = Console()
    table = Table(title=f"churnlens.simulate ({args.months} months, {os.cpu_count()} CPUs)")
    for col in ("measurement", "customers", "event rows", "wall time", "CPU time", "peak RSS"):
        table.add_column(col, justify="right" if col != "measurement" else "left")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        r = measure("sim", n, args.months, args.draws)
        table.add_row(
            "simulate()",
            f"{n:,}",
            f"{r['rows']:,}",
            f"{r['sim_s']:.1f} s",
            f"{r['sim_cpu']:.1f} s",
            f"{r['peak_gb']:.2f} GB",
        )
        console.print(f"simulate {n:,}: {r['sim_s']:.1f} s, {r['peak_gb']:.2f} GB")
        if args.campaigns:
            c = measure("campaigns", n, args.months, args.draws, args.campaigns, args.campaign_size)
            table.add_row(
                f"simulate() + {args.campaigns} campaigns",
                f"{n:,}",
                f"{c['rows']:,}",
                f"{c['sim_s']:.1f} s ({c['sim_s'] / r['sim_s']:.2f}×)",
                f"{c['sim_cpu']:.1f} s",
                f"{c['peak_gb']:.2f} GB",
            )
            table.add_row(
                f"true uplift, {args.draws} draws × {1 + len(c['uplift_by_action'])} futures",
                f"{c['contacted']:,} contacted",
                "",
                f"{c['uplift_s']:.1f} s",
                f"{c['uplift_cpu']:.1f} s",
                "",
            )
            console.print(
                f"campaigns {n:,}: {c['contacted']:,} contacted ({c['control']:,} control), at least "
                f"{c['min_contacted']:,} per campaign; actions {c['actions']}; true uplift by action "
                + ", ".join(f"{k} {v:.3f}" for k, v in c["uplift_by_action"].items())
            )
    if args.truth_size:
        r = measure("truth", args.truth_size, args.months, args.draws)
        table.add_row(
            f"truth_fn() {args.draws} draws",
            f"{r['truth_rows']:,} active",
            "",
            f"{r['truth_s']:.1f} s",
            f"{r['truth_cpu']:.1f} s",
            f"{r['peak_gb']:.2f} GB",
        )
        console.print(
            f"truth {args.truth_size:,}: {r['truth_s']:.1f} s; oracle AUC {r['oracle_auc']:.3f}, "
            f"90-day no-purchase rate {r['churn_rate']:.3f}"
        )
    console.print(table)
    load = os.getloadavg()[0]
    console.print(
        f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs (wall times grow with other load)"
    )


if __name__ == "__main__":
    main()
