"""Benchmark of batch scoring (``churnlens.serving``): time and peak memory per stage, and exact
TreeSHAP implementations side by side.

Run:  python benchmarks/scoring.py                 (100k simulated, 1M generated customers)
      python benchmarks/scoring.py --sizes gen:1000000 --no-explainers     (issue #12 item 6)
      python benchmarks/scoring.py --quick         (20k simulated only)
      python benchmarks/scoring.py --model-kind fixed    (the 500-tree models of the 2026-12-02 figures)
      python benchmarks/scoring.py --model models:/bench-gen/1 --tracking-uri sqlite:///...   (reuse a model)
      python benchmarks/scoring.py --extra-python /tmp/venv/bin/python
          (also runs benchmarks/explainers.py under another interpreter, e.g. a throwaway
          venv holding fasttreeshap-fixed, on the same model and rows)

Data: ``sim`` is :func:`churnlens.simulate.simulate` (24 months); ``gen`` is the fast
generator of ``benchmarks/features.py`` (~75 events per customer) used at 1M because the
simulator takes minutes there. Each data kind gets its own model, trained on
``--train-customers`` (20k) customers of the same kind: by default as ``churnlens train`` trains
with the default settings (:func:`train_defaults`: backtest, early stopping, linear base,
calibration, MLflow registry; ~5-10 min), or with ``--model-kind fixed`` exactly 500 trees x 15
leaves (:func:`train`); loaded back with :func:`churnlens.serving.load_model`.

Stages per size: features (``build_snapshot``); scored beyond feature building: the scoring core's
partition step given the snapshot (prediction, calibration, bands, values, selection candidates,
rejects, drift counts: ``score_base``'s ``features_and_scoring`` seconds), with prediction, rejects
and drift counts also timed apart; explanation of the selected list (top ``--explain``) with 3
reasons (SHAP + sentences); writing (Parquet and CSV). Peak memory is the process's resident set
sampled every 10 ms. The commit, time and load average are printed first.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
#: Trees of the benchmark models (15 leaves each).
TREES = 500
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class PeakMemory:
    """Peak resident memory while the block runs (sampled every 10 ms)."""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.01)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def timed(fn: Any) -> tuple[Any, float, PeakMemory]:
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return out, seconds, mem


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _commit() -> str:
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        out = subprocess.run(git, cwd=HERE, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def make_tables(kind: str, n: int, seed: int) -> Any:
    if kind == "sim":
        from churnlens.simulate import simulate

        return simulate(n, months=24, seed=seed).tables
    return _module("bench_features", HERE / "features.py").generate_tables(n, seed=seed)


def train_defaults(kind: str, store: Path, customers: int = 20_000) -> Any:
    """A model for ``kind`` data trained the way ``churnlens train`` trains with the defaults
    (:func:`churnlens.training.train_model`: backtest, refit with the early-stopped number of
    trees, linear base, calibration, a real MLflow sqlite store and registry) on ``customers``
    customers of the same kind, loaded back with :func:`churnlens.serving.load_model`."""
    from churnlens.serving import load_model
    from churnlens.training import train_model

    t0 = time.perf_counter()
    tables = make_tables(kind, customers, seed=100)
    tracking = f"sqlite:///{store / 'mlflow.db'}"
    store.mkdir(parents=True, exist_ok=True)
    result = train_model(tables, tracking_uri=tracking, model_name=f"bench-{kind}")
    loaded = load_model(f"models:/bench-{kind}/{result.model_version}", tracking_uri=tracking)
    model = loaded.model
    print(
        f"(model for {kind}: trained with the defaults on {customers:,} customers: {model.booster.num_trees()} "
        f"trees x {result.num_leaves} leaves, linear base {'yes' if model.linear is not None else 'no'}, "
        f"{len(model.features)} features, trained in {time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return loaded


def train(kind: str, store: Path) -> Any:
    """A model for ``kind`` data: churnlens's LightGBM settings with exactly ``TREES`` trees of 15
    leaves (no early stopping: the size of the issue's reference figures, as explanation cost
    grows with trees x leaves), calibrated on an out-of-time validation cutoff, fitted on 20k
    customers of the same kind,
    saved as the pyfunc model training logs and loaded back with :func:`churnlens.serving.load_model`.

    The MLflow run, plots and registry of :func:`churnlens.training.train_model` are skipped: they
    cost minutes here and do not change the model scored.
    """
    import lightgbm as lgb

    from churnlens.config import FeatureConfig, TrainConfig
    from churnlens.features import CATALOG_VERSION, build_training_set, training_cutoffs
    from churnlens.model import ChurnModel, prepare_features
    from churnlens.model_store import save_model
    from churnlens.monitoring import reference_statistics
    from churnlens.serving import load_model
    from churnlens.training.calibration import choose_calibrator
    from churnlens.training.estimator import ChurnClassifier
    from churnlens.training.source import LocalSource
    from churnlens.training.split import out_of_time_split

    t0 = time.perf_counter()
    tables = make_tables(kind, 20_000, seed=100)
    cfg = TrainConfig(class_weight="none")
    cutoffs = training_cutoffs(tables, horizon_days=90, step_days=60)
    split = out_of_time_split(cutoffs, horizon_days=90)
    used = sorted({*split.train_cutoffs[-4:], split.validation_cutoff})
    data = build_training_set(tables, cutoffs=used, horizon_days=90)
    valid = data.index.get_level_values("cutoff") == split.validation_cutoff
    X, y = data.drop(columns="churned"), data["churned"].to_numpy(dtype=int)
    clf = ChurnClassifier(cfg.lgbm, seed=cfg.seed, threads=2, class_weight="none", calibration="auto")
    clf.fit(X[~valid], y[~valid], X[valid], y[valid])  # features, levels (and the early-stopped size)
    meta = clf.schema_metadata()
    params = cfg.lgbm.to_lgb(seed=cfg.seed, threads=2, scale_pos_weight=1.0)
    train_set = lgb.Dataset(
        prepare_features(X[~valid], meta),
        y[~valid],
        categorical_feature=list(meta["categorical_levels"]) or "auto",
    )
    booster = lgb.train(params, train_set, num_boost_round=TREES)
    margin = booster.predict(prepare_features(X[valid], meta), raw_score=True)
    calibrator, _ = choose_calibrator(margin, y[valid], method="auto", seed=cfg.seed)
    reference = X[~valid].reset_index(drop=True).copy()
    reference["churn_probability"] = calibrator.transform(
        booster.predict(prepare_features(X[~valid], meta), raw_score=True)
    )
    metadata = {
        **meta,
        "model_name": f"bench-{kind}",
        "catalog_version": CATALOG_VERSION,
        "label_mode": "non_contractual",
        "horizon_days": 90,
        "feature_config": {
            "windows": list(FeatureConfig().windows),
            "active_window_days": 365,
            "downgrade_window_days": 90,
            # as training records them (training/pipeline.py): the BG/NBD fit at the data's end,
            # which serving uses for customers scored alone (none recorded: a fit per request)
            "btyd_params": list(LocalSource(tables).btyd_params(tables.data_end.floor("D") + pd.Timedelta(days=1))),
        },
        "tables": sorted(tables.present()),
        "campaign": {"value_per_saved_customer": 100.0, "save_rate": 0.2, "cost_per_contact": 5.0},
        "reference": reference_statistics(reference),
    }
    model = ChurnModel.from_parts(booster, calibrator, metadata)
    path = store / "model"
    save_model(model, path)  # as training logs it: from code, with the SHA-256 manifest
    loaded = load_model(str(path), tracking_uri=f"sqlite:///{store / 'unused.db'}")
    print(
        f"(model for {kind}: {booster.num_trees()} trees x {cfg.lgbm.num_leaves} leaves (early stopping "
        f"would keep {clf.n_trees_}), {len(model.features)} features, "
        f"trained in {time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return loaded


def bench_size(kind: str, n: int, loaded: Any, n_explain: int, out_dir: Path) -> dict[str, Any]:
    from churnlens.config import ScoringSettings
    from churnlens.features import build_snapshot
    from churnlens.serving import score_base, shap_contributions, top_reasons, write_outputs
    from churnlens.serving.batch import default_cutoff, model_feature_config
    from churnlens.serving.core import drift_counts, score_matrix
    from churnlens.serving.rejects import find_rejects

    t0 = time.perf_counter()
    tables = make_tables(kind, n, seed=7 if kind == "sim" else 1)
    events = sum(len(t) for name, t in tables.present().items() if name != "customers")
    print(f"[{kind} {n:,}] {events:,} events (made in {time.perf_counter() - t0:.0f} s)", flush=True)
    cutoff = default_cutoff(tables)
    model = loaded.model
    config = model_feature_config(model)
    snap, feat_s, feat_mem = timed(lambda: build_snapshot(tables, cutoff, config))
    settings = ScoringSettings(top=n_explain, reasons=3)
    # the scoring core's partition step, beyond feature building (what score_base times as
    # "features_and_scoring" when given the snapshot): its parts first, one by one
    (proba, _), pred_s, pred_mem = timed(lambda: score_matrix(model, model.matrix(snap), settings))
    window = config.active_window_days
    _, rejects_s, _ = timed(lambda: find_rejects(tables, cutoff, snap.index, active_window_days=window))
    _, drift_s, _ = timed(lambda: drift_counts(model, snap, proba))
    result, batch_s, batch_mem = timed(lambda: score_base(tables, cutoff, loaded, settings, snapshot=snap))
    seconds = result.summary.seconds
    scored = result.summary.scored
    beyond = seconds["features_and_scoring"]
    # split the explanation cost: TreeSHAP vs. reason selection + sentences, on 20k selected rows
    sample = snap.loc[result.campaign.loc[result.campaign["selected"], "customer_id"].iloc[:20_000]]
    contributions, shap_s, _ = timed(lambda: shap_contributions(model, sample))
    _, words_s, _ = timed(lambda: top_reasons(model, sample, n=3, contributions=contributions))
    shap_rate = len(sample) / shap_s if shap_s else float("nan")
    words_rate = len(sample) / words_s if words_s else float("nan")
    written = {}
    for ext in ("parquet", "csv"):
        _, write_s, write_mem = timed(lambda ext=ext: write_outputs(result, out_dir / f"campaign_{n}.{ext}"))
        written[ext] = (write_s, write_mem)
    explained = result.summary.explained
    row = {
        "data": kind,
        "customers": n,
        "events": events,
        "scored": scored,
        "trees": model.booster.num_trees(),
        "features_s": feat_s,
        "features_peak_gb": feat_mem.peak / 1e9,
        "prediction_s": pred_s,
        "prediction_peak_gb": pred_mem.peak / 1e9,
        "rejects_s": rejects_s,
        "drift_counts_s": drift_s,
        "scored_beyond_features_s": beyond,
        "scored_per_s": scored / beyond if beyond else float("nan"),
        "explained": explained,
        "explain_s": seconds["explaining"],
        "explain_rows_per_s": explained / seconds["explaining"] if seconds["explaining"] else float("nan"),
        "shap_only_rows_per_s": shap_rate,
        "sentences_rows_per_s": words_rate,
        "batch_total_s": batch_s,
        "batch_peak_gb": batch_mem.peak / 1e9,
        "write_parquet_s": written["parquet"][0],
        "write_csv_s": written["csv"][0],
        "write_peak_gb": max(w[1].peak for w in written.values()) / 1e9,
        "load_avg_1m": os.getloadavg()[0],
    }
    print(
        f"  features {feat_s:.1f} s (peak {row['features_peak_gb']:.2f} GB)\n"
        f"  scored beyond features (score_partition: prediction, bands, values, selection candidates, rejects, "
        f"drift counts) {beyond:.2f} s for {scored:,} customers = {row['scored_per_s']:,.0f} customers/s "
        f"(of which, timed apart: prediction {pred_s:.2f} s, rejects {rejects_s:.2f} s, drift counts {drift_s:.2f} s)\n"
        f"  explanation of {explained:,} selected x 3 reasons {seconds['explaining']:.1f} s "
        f"({row['explain_rows_per_s']:,.0f} rows/s; on 20k of them TreeSHAP {shap_rate:,.0f} rows/s, "
        f"selection + sentences {words_rate:,.0f} rows/s); batch peak {row['batch_peak_gb']:.2f} GB\n"
        f"  writing: parquet {written['parquet'][0]:.1f} s, csv {written['csv'][0]:.1f} s; "
        f"load average {row['load_avg_1m']:.1f}",
        flush=True,
    )
    gc.collect()
    return row


def bench_explainers(loaded: Any, rows: int, extra_python: str | None, work: Path) -> list[dict[str, Any]]:
    """pred_contrib vs shap.TreeExplainer here (+ others under ``extra_python``) on the same rows."""
    from churnlens.features import build_snapshot
    from churnlens.serving.batch import default_cutoff, model_feature_config

    explainers = _module("bench_explainers", HERE / "explainers.py")
    tables = make_tables("sim", max(rows * 2, 5000), seed=9)
    snap = build_snapshot(tables, default_cutoff(tables), model_feature_config(loaded.model)).iloc[:rows]
    X = loaded.model.prepare(snap)
    table = explainers.compare(loaded.model.booster, X)
    table["interpreter"] = "project venv"
    frames = [table]
    if extra_python:
        booster, data, out = work / "booster.txt", work / "rows.parquet", work / "explainers.json"
        loaded.model.booster.save_model(str(booster))
        X.to_parquet(data)
        subprocess.run(
            [
                extra_python,
                str(HERE / "explainers.py"),
                "--booster",
                str(booster),
                "--rows",
                str(data),
                "--n",
                str(rows),
                "--json",
                str(out),
            ],
            check=True,
        )
        other = pd.DataFrame(json.loads(out.read_text())["results"])
        other["interpreter"] = extra_python
        frames.append(other)
    result = pd.concat(frames, ignore_index=True)
    print(
        f"[explainers] {loaded.model.booster.num_trees()} trees, {len(X.columns)} features "
        f"({sum(str(t) == 'category' for t in X.dtypes)} categorical), {len(X):,} rows"
    )
    print(result.to_string(index=False, float_format=lambda x: f"{x:,.4g}"), flush=True)
    return result.to_dict(orient="records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k simulated customers only")
    parser.add_argument(
        "--sizes",
        nargs="*",
        default=["sim:100000", "gen:1000000"],
        help="kind:customers pairs (kind sim or gen)",
    )
    parser.add_argument("--explain", type=int, default=100_000, help="selected customers to explain")
    parser.add_argument("--explainer-rows", type=int, default=2000)
    parser.add_argument(
        "--extra-python", help="interpreter with other TreeSHAP packages (fasttreeshap-fixed)"
    )
    parser.add_argument("--json", help="write all results here")
    parser.add_argument(
        "--model-kind", choices=["defaults", "fixed"], default="defaults",
        help="defaults: trained like `churnlens train` with the default settings (early stopping decides the "
        f"trees); fixed: exactly {TREES} trees x 15 leaves (the 2026-12-02 figures)",
    )  # fmt: skip
    parser.add_argument("--train-customers", type=int, default=20_000, help="customers the model is trained on")
    parser.add_argument("--model", help="score with this model URI instead of training one (all sizes)")
    parser.add_argument("--tracking-uri", help="tracking store of --model")
    parser.add_argument("--no-explainers", action="store_true", help="skip the TreeSHAP implementations table")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    print(f"commit {_commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    sizes = ["sim:20000"] if args.quick else args.sizes
    results: dict[str, Any] = {"sizes": [], "explainers": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models: dict[str, Any] = {}
        for item in sizes:
            kind, n = item.split(":")
            if kind not in models:
                if args.model:
                    from churnlens.serving import load_model

                    models[kind] = load_model(args.model, tracking_uri=args.tracking_uri)
                elif args.model_kind == "defaults":
                    models[kind] = train_defaults(kind, work / kind, args.train_customers)
                else:
                    models[kind] = train(kind, work / kind)
            results["sizes"].append(bench_size(kind, int(n), models[kind], min(args.explain, int(n)), work))
        if not args.no_explainers:
            sim_model = models.get("sim") or train("sim", work / "sim")
            results["explainers"] = bench_explainers(sim_model, args.explainer_rows, args.extra_python, work)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
