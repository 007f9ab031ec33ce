"""Do campaign-report's 95 % intervals cover the simulator's true average uplift?

For each seed: simulate a loyalty program with one past campaign (``simulate --campaigns 1``:
customers selected by risk, actions by the default rules, a random control group per action),
compute the true uplift of every contacted customer (``truth_uplift``: p_churn_if_untreated -
p_churn_if_treated, Monte Carlo from the hidden state), and run the campaign report on the
simulated tables (what ``churnlens campaign-report DATA --campaign camp01 --label-mode
non_contractual`` computes). An action's interval *covers* when it holds the mean true uplift of
the action's contacted customers (treated and control).

Reference in the same run: the Wald interval of a difference of proportions on the same data
(what a hand-rolled report would use).

    python benchmarks/campaign_coverage.py                  # 20 seeds, 20k customers, campaigns of 5,000
    python benchmarks/campaign_coverage.py --seeds 5 --customers 8000 --campaign-size 3000 --draws 64
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import norm


def wald(effect) -> tuple[float, float]:
    """The reference: Wald interval of control - treated churn."""
    pt, pc, nt, nc = effect.churn_treated, effect.churn_control, effect.treated, effect.control
    half = norm.ppf(0.975) * math.sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc)
    return (effect.uplift - half, effect.uplift + half)


def one_seed(seed: int, args: argparse.Namespace) -> list[dict]:
    from churnlens.serving.campaign_report import campaign_report
    from churnlens.simulate import CampaignSettings, simulate, simulate_uplift_table

    t0 = time.perf_counter()
    campaigns = CampaignSettings(n_campaigns=1, size=args.campaign_size, holdout=args.holdout)
    sim = simulate(args.customers, months=args.months, seed=seed, campaigns=campaigns)
    truth = simulate_uplift_table(sim, draws=args.draws)
    truth["uplift"] = truth["p_churn_if_untreated"] - truth["p_churn_if_treated"]
    report = campaign_report(sim.tables, "camp01", mode="non_contractual")
    seconds = time.perf_counter() - t0
    rows = []
    for effect in report.effects:
        mine = truth if effect.action == "overall" else truth[truth["action"] == effect.action]
        true = float(mine["uplift"].mean())
        w_low, w_high = wald(effect)
        rows.append({
            "seed": seed, "action": effect.action, "treated": effect.treated, "control": effect.control,
            "true_uplift": true, "uplift": effect.uplift, "low": effect.uplift_low, "high": effect.uplift_high,
            "covered": bool(effect.uplift_low <= true <= effect.uplift_high),
            "wald_low": w_low, "wald_high": w_high, "wald_covered": bool(w_low <= true <= w_high),
            "seconds": seconds,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--campaign-size", type=int, default=5_000)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--draws", type=int, default=256, help="Monte Carlo futures per customer for the truth")
    parser.add_argument("--json", type=Path, help="Write every figure here")
    args = parser.parse_args()
    console = Console(width=140)

    rows: list[dict] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        got = one_seed(seed, args)
        rows += got
        console.print(
            f"seed {seed}: "
            + "; ".join(
                f"{r['action']} {r['uplift']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] true {r['true_uplift']:+.3f}"
                + ("" if r["covered"] else " MISSED")
                for r in got
            )
            + f" ({got[0]['seconds']:.0f} s)",
            highlight=False,
        )

    table = Table(title=f"95 % interval coverage of the true average uplift over {args.seeds} seeds")
    for col in ("action", "treated / control (mean)", "mean true uplift", "mean estimate", "covered (report)",
                "mean width (report)", "covered (Wald, reference)", "mean width (Wald)"):  # fmt: skip
        table.add_column(col, justify="left" if col == "action" else "right")
    actions = sorted({r["action"] for r in rows} - {"overall"}) + ["overall"]
    for action in actions:
        mine = [r for r in rows if r["action"] == action]
        width = np.mean([r["high"] - r["low"] for r in mine])
        wald_width = np.mean([r["wald_high"] - r["wald_low"] for r in mine])
        table.add_row(
            action,
            f"{np.mean([r['treated'] for r in mine]):,.0f} / {np.mean([r['control'] for r in mine]):,.0f}",
            f"{np.mean([r['true_uplift'] for r in mine]):+.4f}",
            f"{np.mean([r['uplift'] for r in mine]):+.4f}",
            f"{sum(r['covered'] for r in mine)} / {len(mine)}",
            f"{width:.4f}",
            f"{sum(r['wald_covered'] for r in mine)} / {len(mine)}",
            f"{wald_width:.4f} ({wald_width / width:.2f}x)",
        )
    console.print(table)
    console.print(f"total time {sum(r['seconds'] for r in rows if r['action'] == 'overall'):.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
