"""Benchmark of batch scoring (``churnlens.serving``): time and peak memory per stage, and exact
TreeSHAP implementations side by side.

Run:  python benchmarks/scoring.py                 (100k simulated, 1M generated customers)
      python benchmarks/scoring.py --quick         (20k simulated only)
      python benchmarks/scoring.py --extra-python /tmp/venv/bin/python
          (also runs benchmarks/explainers.py under another interpreter, e.g. a throwaway
          venv holding fasttreeshap-fixed, on the same model and rows)

Data: ``sim`` is :func:`churnlens.simulate.simulate` (24 months); ``gen`` is the fast
generator of ``benchmarks/features.py`` (~75 events per customer) used at 1M because the
simulator takes minutes there. Each data kind gets its own model (churnlens's estimator with
default settings on 20k customers of the same kind, see :func:`train`), saved as a pyfunc
model and loaded back with :func:`churnlens.serving.load_model`.

Stages per size: features (``build_snapshot``), prediction (prepare + LightGBM raw score +
calibration), the rest of scoring (bands, value, ranking, selection of the top 100k),
explanation of the selected list with 3 reasons (SHAP + sentences), drift + rejects, and
writing (Parquet and CSV). Peak memory is the process's resident set sampled every 10 ms.
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

import numpy as np
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


def make_tables(kind: str, n: int, seed: int) -> Any:
    if kind == "sim":
        from churnlens.simulate import simulate

        return simulate(n, months=24, seed=seed).tables
    return _module("bench_features", HERE / "features.py").generate_tables(n, seed=seed)


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
    from churnlens.features import build_snapshot
    from churnlens.serving import score_base, shap_contributions, top_reasons, write_outputs
    from churnlens.serving.batch import default_cutoff, model_feature_config

    t0 = time.perf_counter()
    tables = make_tables(kind, n, seed=7 if kind == "sim" else 1)
    events = sum(len(t) for name, t in tables.present().items() if name != "customers")
    print(f"[{kind} {n:,}] {events:,} events (made in {time.perf_counter() - t0:.0f} s)", flush=True)
    cutoff = default_cutoff(tables)
    model = loaded.model
    snap, feat_s, feat_mem = timed(lambda: build_snapshot(tables, cutoff, model_feature_config(model)))

    def predict() -> np.ndarray:
        return model.calibrator.transform(model.booster.predict(model.prepare(snap), raw_score=True))

    _, pred_s, pred_mem = timed(predict)
    result, batch_s, batch_mem = timed(
        lambda: score_base(tables, cutoff, loaded, snapshot=snap, top=n_explain, reasons=3)
    )
    seconds = result.summary.seconds
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
        "scored": result.summary.scored,
        "features_s": feat_s,
        "features_peak_gb": feat_mem.peak / 1e9,
        "prediction_s": pred_s,
        "prediction_peak_gb": pred_mem.peak / 1e9,
        "scoring_s": seconds["scoring"],
        "explained": explained,
        "explain_s": seconds["explaining"],
        "explain_rows_per_s": explained / seconds["explaining"] if seconds["explaining"] else float("nan"),
        "shap_only_rows_per_s": shap_rate,
        "sentences_rows_per_s": words_rate,
        "drift_rejects_s": seconds["drift_and_rejects"],
        "batch_total_s": batch_s,
        "batch_peak_gb": batch_mem.peak / 1e9,
        "scored_beyond_features_s": seconds["scoring"] + seconds["drift_and_rejects"],
        "write_parquet_s": written["parquet"][0],
        "write_csv_s": written["csv"][0],
        "write_peak_gb": max(w[1].peak for w in written.values()) / 1e9,
        "load_avg_1m": os.getloadavg()[0],
    }
    print(
        f"  features {feat_s:.1f} s (peak {row['features_peak_gb']:.2f} GB); prediction {pred_s:.1f} s; "
        f"scoring (prediction, bands, value, ranking, top-{n_explain:,} selection) "
        f"{seconds['scoring']:.1f} s; "
        f"drift + rejects {seconds['drift_and_rejects']:.1f} s -> scored beyond features "
        f"{row['scored_beyond_features_s']:.1f} s\n"
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
    args = parser.parse_args()
    sizes = ["sim:20000"] if args.quick else args.sizes
    results: dict[str, Any] = {"sizes": [], "explainers": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models: dict[str, Any] = {}
        for item in sizes:
            kind, n = item.split(":")
            if kind not in models:
                models[kind] = train(kind, work / kind)
            results["sizes"].append(bench_size(kind, int(n), models[kind], min(args.explain, int(n)), work))
        sim_model = models.get("sim") or train("sim", work / "sim")
        results["explainers"] = bench_explainers(sim_model, args.explainer_rows, args.extra_python, work)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
