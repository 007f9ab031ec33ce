"""Uplift learners on the simulator's past campaigns, judged on campaigns held out in time against the truth.

1. Simulate a loyalty program with past campaigns (``simulate --campaigns``: customers selected
   by risk, actions by the shipped rules, a random control group per action) and the true
   churn probability of every contacted customer without and with each action
   (``truth_uplift.parquet``, Monte Carlo from the hidden state, ``--draws`` futures each).
2. Build the uplift rows once (features at each contact date, churn within 90 days after it),
   hold out the latest ``--test-campaigns`` campaigns, and fit each learner on the earlier
   ones (``fit_and_evaluate`` with ``refit = false``: the model judged is the one that never saw
   the held-out campaigns).
3. On the held-out contacted customers:

   - **Qini ratio**: the Qini coefficient of the learner's ranking (each customer by the
     predicted uplift of the action the campaign assigned) computed from the *true* uplift
     (no outcome noise), over that of the oracle ranking (by true uplift);
   - **incremental value at a budget**: per held-out campaign, a budget of ``--budget-share`` of
     what sending every customer their rule's action costs; the uplift list
     (:func:`~churnlens.serving.uplift_targeting.select_by_uplift`, the scoring core's selection)
     against the risk list (:func:`~churnlens.serving.uplift_targeting.risk_list`: by churn
     probability, first rule that fits) and a random list (the same with a random order, mean
     of ``--random-lists`` orders), all valued with the truth:
     ``sum((p_untreated - p_action) x value) - cost``; "no action" is worth 0. Eligibility is the
     shipped rules' data condition as the simulator applied it (``eligible_<action>`` in the
     truth table). A ratio to the risk (random) list is printed only when that list's value is
     positive; the difference always.

``--validate`` never touches the held-out campaigns: each of the last ``--validation-campaigns``
campaigns before them is evaluated in turn, by learners fitted on the campaigns before it
(rolling origin). Learners and settings are chosen there; the held-out figures are reported once.

The truth is a Monte Carlo estimate: ranking by it and valuing the ranking with the same noisy
draws flatters the oracle (it ranks its own noise). ``--truth-check D`` computes a second,
independent truth with ``D`` draws (the random streams are keyed by the number of draws) and
prints every Qini ratio with it too, and the oracle's Qini under both truths.

The reference in the same run is the oracle (true uplift, the best any learner can do), the
risk list and the random list.

    python benchmarks/uplift.py --validate                       # choose: validation campaigns only
    python benchmarks/uplift.py                                  # report: 80k customers, 6 campaigns of 8,000
    python benchmarks/uplift.py --customers 20000 --campaign-size 5000 --learners t,nested --draws 64
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

HORIZON = 90


def simulate_program(args: argparse.Namespace):
    """The simulation with campaigns (deterministic for the seed)."""
    from churnlens.simulate import CampaignSettings, simulate

    campaigns = CampaignSettings(n_campaigns=args.campaigns, size=args.campaign_size, holdout=0.2,
                                 horizon_days=HORIZON)  # fmt: skip
    return simulate(args.customers, months=args.months, seed=args.seed, campaigns=campaigns)


def simulated(args: argparse.Namespace, work: Path, draws: list[int]) -> None:
    """Write the tables (``work/data``) and a truth per number of draws (``work/truth_d<D>.parquet``) if missing."""
    from churnlens.data.io import write_tables
    from churnlens.simulate import simulate_uplift_table

    missing = [d for d in draws if not (work / f"truth_d{d}.parquet").is_file()]
    if (work / "data").is_dir() and not missing:
        return
    t0 = time.perf_counter()
    sim = simulate_program(args)
    if not (work / "data").is_dir():
        write_tables(sim.tables, work / "data", fmt="parquet")
    print(f"simulated {args.customers:,} customers, {args.campaigns} campaigns in {time.perf_counter() - t0:.0f} s",
          flush=True)  # fmt: skip
    for d in missing:
        t0 = time.perf_counter()
        simulate_uplift_table(sim, draws=d).to_parquet(work / f"truth_d{d}.parquet", index=False)
        print(f"truth with {d} draws in {time.perf_counter() - t0:.0f} s", flush=True)


def row_tau(truth: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """True uplift of the assigned action of each uplift row."""
    key = truth["customer_id"].astype(str) + "|" + truth["campaign_id"].astype(str)
    by_key = truth.set_index(key)
    row_key = rows["customer_id"].astype(str) + "|" + rows["campaign_id"].astype(str)
    return (by_key["p_churn_if_untreated"] - by_key["p_churn_if_treated"]).reindex(row_key).to_numpy()


def true_values(
    picks: pd.DataFrame, truth: pd.DataFrame, value: pd.Series, costs: dict[str, float]
) -> tuple[float, float]:
    """Sum over a list of (true uplift of its action x value - cost), and the same before costs."""
    if not len(picks):
        return 0.0, 0.0
    t = truth.reindex(picks["customer_id"].astype(str))
    p_action = np.array([t[f"p_churn_if_{a}"].iloc[i] for i, a in enumerate(picks["action"].astype(str))])
    uplift = t["p_churn_if_untreated"].to_numpy() - p_action
    v = value.reindex(picks["customer_id"].astype(str)).to_numpy(dtype="float64")
    gross = float(np.sum(uplift * v))
    return gross - sum(costs[a] for a in picks["action"].astype(str)), gross


def budget_lists(
    campaign: str, rows: pd.DataFrame, features: pd.DataFrame, truth: pd.DataFrame, predicted: dict[str, np.ndarray],
    churn_probability: np.ndarray, args: argparse.Namespace,
) -> dict[str, float]:
    """True incremental value of the uplift, risk and oracle lists of one held-out campaign at one budget."""
    from churnlens.config import DEFAULT_ACTION_RULES, ScoringSettings
    from churnlens.serving.actions import RuleInputs
    from churnlens.serving.uplift_targeting import _NET, risk_list, select_by_uplift
    from churnlens.uplift.model import uplift_column

    rules = list(DEFAULT_ACTION_RULES)
    costs = {r.name: float(r.cost) for r in rules}
    ids = rows["customer_id"].astype(str).to_numpy()
    t = truth.reindex(ids)
    value = pd.Series(np.clip(np.nan_to_num(features["spend_365d"].to_numpy(dtype="float64")), 0, None), index=ids)
    eligible = {r.name: t[f"eligible_{r.name}"].to_numpy(dtype=bool) for r in rules}
    first = np.full(len(ids), None, dtype=object)
    for r in reversed(rules):  # the first rule that fits, by priority
        first = np.where(eligible[r.name], r.name, first)
    full_cost = sum(costs[a] for a in first if a is not None)
    budget = args.budget_share * full_cost
    scores = pd.DataFrame({"customer_id": ids, "churn_probability": churn_probability, "customer_value": value.values,
                           "value_at_risk": churn_probability * value.values, "risk_band": "high"})  # fmt: skip
    settings = ScoringSettings()
    out = {"campaign": campaign, "customers": len(ids), "budget": budget}
    true_tau = {r.name: t["p_churn_if_untreated"].to_numpy() - t[f"p_churn_if_{r.name}"].to_numpy() for r in rules}
    for name, uplift in (("uplift", predicted), ("oracle", true_tau)):
        frame = scores.copy()
        for r in rules:
            u = uplift.get(r.name)
            frame[uplift_column(r.name)] = u if u is not None else np.zeros(len(ids))
            net = frame[uplift_column(r.name)].to_numpy() * value.values - r.cost
            frame[_NET + r.name] = np.where(eligible[r.name] & (u is not None), net, -np.inf)
        chosen = select_by_uplift(rules, frame, budget)
        picks = chosen.rows[["customer_id", "action"]]
        out[f"{name}_value"], out[f"{name}_gross"] = true_values(picks, t, value, costs)
        out[f"{name}_contacted"] = len(chosen.rows)
        out[f"{name}_cost"] = chosen.counts["cost"]
    inputs = pd.DataFrame({"customer_id": pd.array(ids, dtype="string"), "value_at_risk": scores["value_at_risk"],
                           "risk_band": pd.array(["high"] * len(ids), dtype="string"),
                           "days_since_contact": np.nan})  # fmt: skip
    for r in rules:
        inputs["eligible:" + r.name] = eligible[r.name]
    frame = scores.copy()
    for r in rules:
        frame[uplift_column(r.name)] = 0.0
    risk = risk_list(rules, frame, RuleInputs(inputs), budget, settings)
    out["risk_value"], out["risk_gross"] = true_values(risk.picks, t, value, costs)
    out["risk_contacted"] = risk.contacted
    out["risk_cost"] = risk.cost
    # a random order instead of the churn probability (the same rules, pressure and budget)
    rng = np.random.default_rng(args.learner_seed)
    random_values = []
    for _ in range(args.random_lists):
        shuffled = frame.assign(churn_probability=rng.random(len(frame)))
        picks = risk_list(rules, shuffled, RuleInputs(inputs), budget, settings).picks
        random_values.append(true_values(picks, t, value, costs))
    out["random_value"] = float(np.mean([v for v, _ in random_values]))
    out["random_gross"] = float(np.mean([g for _, g in random_values]))
    return out


VALUES = ("uplift_value", "risk_value", "random_value", "oracle_value", "uplift_gross", "risk_gross", "random_gross",
          "oracle_gross", "uplift_cost", "risk_cost")  # fmt: skip


def run_learner(learner: str, data, truths: dict[int, pd.DataFrame], taus: dict[int, np.ndarray],
                args: argparse.Namespace, *, test_campaigns: int) -> dict:
    """Fit ``learner`` on the campaigns before the latest ``test_campaigns`` of ``data``; its figures on those.

    ``truths`` and ``taus`` (per number of draws, the first the reference): the truth tables and
    the true uplift of every row of ``data``.
    """
    from churnlens.config import ChurnConfig, LabelConfig, UpliftSettings
    from churnlens.training.uplift.pipeline import Schema, fit_and_evaluate, fit_churn_ranker, split_campaigns
    from churnlens.uplift.metrics import expected_qini, qini_coefficient

    settings = replace(UpliftSettings(learner=learner, refit=False, test_campaigns=test_campaigns,
                                      seed=args.learner_seed), **json.loads(args.settings))  # fmt: skip
    config = ChurnConfig(labels=LabelConfig(mode="non_contractual", horizon_days=HORIZON), uplift=settings)
    t0 = time.perf_counter()
    result = fit_and_evaluate(data, config=config, model_name="benchmark", tables=[])
    seconds = time.perf_counter() - t0
    model = result.model
    split = split_campaigns(data, settings)
    campaign_of = data.rows["campaign_id"].astype(str).to_numpy()
    test = np.isin(campaign_of, split.test)
    actions = data.rows["action"].astype(str).to_numpy()
    X = model.matrix(data.features[test])
    predicted = {a: model.uplift_of_matrix(X, a) for a in model.actions}
    own = np.full(test.sum(), np.nan)
    for a in model.actions:
        own[actions[test] == a] = predicted[a][actions[test] == a]
    learnt = ~np.isnan(own)
    r = data.rows[test]
    reference = next(iter(taus))
    out = {"learner": learner, "seconds": seconds, "actions": ",".join(model.actions),
           "skipped": ",".join(result.skipped), "train_campaigns": ",".join(split.train),
           "test_campaigns": ",".join(split.test), "test_rows": int(test.sum())}  # fmt: skip
    for name in [*model.actions, "overall"]:
        m = learnt if name == "overall" else actions[test] == name
        for draws, tau in taus.items():
            suffix = "" if draws == reference else f"_d{draws}"
            oracle = expected_qini(tau[test][m], tau[test][m])
            out[f"qini_ratio_{name}{suffix}"] = expected_qini(own[m], tau[test][m]) / oracle
            out[f"oracle_qini_{name}{suffix}"] = oracle
        out[f"observed_qini_{name}"] = qini_coefficient(own[m], r["treated"].to_numpy()[m], r["churned"].to_numpy()[m])
        out[f"observed_qini_oracle_{name}"] = qini_coefficient(
            taus[reference][test][m], r["treated"].to_numpy()[m], r["churned"].to_numpy()[m])
    train = np.isin(campaign_of, split.train) & np.isin(actions, model.actions)
    schema = Schema(model.features, model.metadata.categorical_levels)
    ranker = fit_churn_ranker(data, train, schema, settings)
    churn = ranker.predict(schema.matrix(data.features[test]))
    truth = truths[reference]
    lists = []
    for campaign in split.test:
        m = campaign_of[test] == campaign
        mine = truth[truth["campaign_id"].astype(str) == campaign]
        mine = mine.set_index(mine["customer_id"].astype(str))
        lists.append(budget_lists(campaign, r[m], data.features[test][m], mine,
                                  {a: p[m] for a, p in predicted.items()}, churn[m], args))  # fmt: skip
    out["lists"] = lists
    out.update({k: sum(x[k] for x in lists) for k in VALUES})
    return out


def until_campaign(data, campaign: str):
    """The uplift rows of the campaigns sent up to ``campaign`` (its later ones, held-out included, dropped)."""
    from churnlens.training.uplift.dataset import UpliftData

    send = data.campaigns.set_index(data.campaigns["campaign_id"].astype(str))["send"]
    keep = send.index[send <= send[campaign]]
    mask = data.rows["campaign_id"].astype(str).isin(keep).to_numpy()
    campaigns = data.campaigns[data.campaigns["campaign_id"].astype(str).isin(keep)].reset_index(drop=True)
    sub = data.subset(mask)
    return UpliftData(sub.features, sub.rows, campaigns, data.label_mode, data.horizon_days, list(data.notes)), mask


def validate_learner(learner: str, data, truths: dict[int, pd.DataFrame], taus: dict[int, np.ndarray],
                     args: argparse.Namespace) -> dict:
    """Rolling origin over the last ``--validation-campaigns`` campaigns before the held-out ones.

    Each is evaluated by the learner fitted on the campaigns before it (purged as ``train-uplift``
    purges); figures are the mean of the Qini ratios and the sum of the list values.
    """
    from churnlens.config import UpliftSettings
    from churnlens.training.uplift.pipeline import split_campaigns

    held = split_campaigns(data, replace(UpliftSettings(), test_campaigns=args.test_campaigns))
    folds = held.train[-int(args.validation_campaigns):]
    runs = []
    for campaign in folds:
        part, mask = until_campaign(data, campaign)
        runs.append(run_learner(learner, part, truths, {d: t[mask] for d, t in taus.items()}, args, test_campaigns=1))
    out = {"learner": learner, "seconds": sum(x["seconds"] for x in runs), "actions": runs[-1]["actions"],
           "skipped": runs[-1]["skipped"], "test_campaigns": ",".join(folds),
           "test_rows": sum(x["test_rows"] for x in runs), "folds": runs,
           "lists": [x for run in runs for x in run["lists"]]}  # fmt: skip
    for key in runs[0]:
        if key.startswith(("qini_ratio_", "oracle_qini_", "observed_qini_")):
            out[key] = float(np.mean([x.get(key, np.nan) for x in runs]))
    out.update({k: sum(x[k] for x in runs) for k in VALUES})
    return out


def ratio(a: float, b: float) -> str:
    """``a / b`` when the reference ``b`` is positive; a ratio to a loss or to nothing is no multiple."""
    return f"{a / b:.2f}×" if b > 0 else "n/a (≤ 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=80_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--campaigns", type=int, default=6)
    parser.add_argument("--campaign-size", type=int, default=8_000)
    parser.add_argument("--draws", type=int, default=1024, help="Monte Carlo futures per customer for the truth")
    parser.add_argument("--truth-check", type=int, default=None, metavar="D",
                        help="also judge with a second, independent truth of D draws (Monte Carlo noise check)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--learner-seed", type=int, default=42)
    parser.add_argument("--learners", default="t,x,dr,t_shared,nested")
    parser.add_argument("--settings", default="{}",
                        help='JSON of [uplift] settings for every learner, e.g. {"rounds": 300}')
    parser.add_argument("--test-campaigns", type=int, default=2)
    parser.add_argument("--validate", action="store_true",
                        help="judge on the campaigns before the held-out ones only (rolling origin), to choose")
    parser.add_argument("--validation-campaigns", type=int, default=2)
    parser.add_argument("--budget-share", type=float, default=0.3,
                        help="budget as a share of sending every held-out customer their rule's action")
    parser.add_argument("--random-lists", type=int, default=20, help="random orders averaged for the random list")
    # a cache of this checkout's, not a fixed name under /tmp that another user's run could hold or change
    parser.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / ".cache" / "uplift",
                        help="where the simulated data and its truths are kept between runs "
                             "(default: benchmarks/.cache/uplift)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from churnlens.config import FeatureConfig
    from churnlens.data import load_tables
    from churnlens.training.uplift.dataset import build_uplift_data

    work = args.work / f"n{args.customers}-c{args.campaigns}x{args.campaign_size}-s{args.seed}"
    all_draws = [args.draws] + ([args.truth_check] if args.truth_check and args.truth_check != args.draws else [])
    simulated(args, work, all_draws)
    tables = load_tables(work / "data")[0]
    truths = {d: pd.read_parquet(work / f"truth_d{d}.parquet") for d in all_draws}
    t0 = time.perf_counter()
    data = build_uplift_data(tables, features=FeatureConfig(), horizon_days=HORIZON, mode="non_contractual")
    print(f"uplift rows: {len(data.rows):,} in {time.perf_counter() - t0:.0f} s", flush=True)
    sizes = data.campaigns[["campaign_id", "send", "contacted", "treated", "control", "rows"]]
    taus = {d: row_tau(t, data.rows) for d, t in truths.items()}
    results = []
    for learner in args.learners.split(","):
        if args.validate:
            results.append(validate_learner(learner.strip(), data, truths, taus, args))
        else:
            results.append(run_learner(learner.strip(), data, truths, taus, args, test_campaigns=args.test_campaigns))
        print(f"{learner}: done in {results[-1]['seconds']:.0f} s", flush=True)

    console = Console(width=200)
    console.print("Campaigns (send date, contacted, treated/control, uplift rows kept):")
    console.print(sizes.to_string(index=False))
    what = "Validation campaigns (each by learners fitted on the campaigns before it)" if args.validate else \
        "Held-out campaigns"  # fmt: skip
    held = f"{results[0]['test_campaigns']} ({results[0]['test_rows']:,} contacted rows)"
    check = f"truth {args.truth_check} draws" if len(all_draws) > 1 else None
    table = Table(title=f"{what} {held}: Qini coefficient of each learner's ranking over the oracle's, "
                  f"truth {args.draws} draws")  # fmt: skip
    extra = [f"overall, {check}", "per action"] if check else []
    for column in ("learner", "fit s", "overall", "per action", *extra):
        table.add_column(column, justify="left" if column in ("learner", "per action") else "right")
    for r in results:
        names = r["actions"].split(",")
        row = [r["learner"], f"{r['seconds']:.0f}", f"{r['qini_ratio_overall']:.3f}",
               ", ".join(f"{a} {r[f'qini_ratio_{a}']:.2f}" for a in names)]  # fmt: skip
        if check:
            d = args.truth_check
            row += [f"{r[f'qini_ratio_overall_d{d}']:.3f}",
                    ", ".join(f"{a} {r[f'qini_ratio_{a}_d{d}']:.2f}" for a in names)]  # fmt: skip
        table.add_row(*row)
    console.print(table)
    table = Table(title=f"{what}: true incremental value of each list at a budget of {args.budget_share:.0%} of "
                  "sending every customer their rule's action (no action: 0)")  # fmt: skip
    for column in ("learner", "uplift list", "risk list", "random list", "oracle list", "uplift − risk",
                   "uplift − random", "uplift / risk", "uplift / random",
                   "before costs: uplift / risk / random / oracle"):  # fmt: skip
        table.add_column(column, justify="left" if column == "learner" else "right")
    for r in results:
        table.add_row(r["learner"], f"{r['uplift_value']:,.0f}", f"{r['risk_value']:,.0f}", f"{r['random_value']:,.0f}",
                      f"{r['oracle_value']:,.0f}", f"{r['uplift_value'] - r['risk_value']:,.0f}",
                      f"{r['uplift_value'] - r['random_value']:,.0f}", ratio(r["uplift_value"], r["risk_value"]),
                      ratio(r["uplift_value"], r["random_value"]),
                      f"{r['uplift_gross']:,.0f} / {r['risk_gross']:,.0f} / {r['random_gross']:,.0f} / "
                      f"{r['oracle_gross']:,.0f}")  # fmt: skip
    console.print(table)
    if check:
        r = results[0]
        console.print(f"Oracle's Qini coefficient (ranking by a truth and valued with it), {args.draws} draws vs "
                      f"{args.truth_check}: " + ", ".join(
                          f"{a} {r[f'oracle_qini_{a}']:.5f} vs {r[f'oracle_qini_{a}_d{args.truth_check}']:.5f}"
                          for a in [*r['actions'].split(','), 'overall']))  # fmt: skip
    for r in results:
        for x in r["lists"]:
            console.print(
                f"  {r['learner']} {x['campaign']}: {x['customers']:,} customers, budget {x['budget']:,.0f}: uplift "
                f"{x['uplift_value']:,.0f} ({x['uplift_contacted']:,} contacted, cost {x['uplift_cost']:,.0f}), risk "
                f"{x['risk_value']:,.0f} ({x['risk_contacted']:,}, cost {x['risk_cost']:,.0f}), random "
                f"{x['random_value']:,.0f}, oracle {x['oracle_value']:,.0f} ({x['oracle_contacted']:,})"
            )
    if results[0].get("skipped"):
        console.print(f"skipped (too few randomised customers in the training campaigns): {results[0]['skipped']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
