"""Benchmark of ``churnlens.features``: snapshot speed and memory, beside a plain DuckDB reference.

Run:  python benchmarks/features.py            (100k simulated + 1M generated customers,
                                                 training set over 12 cutoffs of 20k)
      python benchmarks/features.py --quick    (20k simulated only)

Data:
- ``sim``: :func:`churnlens.simulate.simulate` (all five tables, ~80 events per customer over
  24 months);
- ``gen``: a fast vectorised generator of tables with the same columns and dtypes (checked
  against validation at start) at the scale of the issue (per customer up to ~50 purchases,
  ~20 program events, ~5 support contacts; customers who churn early have fewer: 63.8M events
  for 1M customers, 74.6M with ``--event-scale 1.176``), used at 1M because the simulator (a
  daily process with ground truth) takes several minutes at that size.

For each data set it prints the full snapshot time (all four families), events per second,
the peak resident memory during the snapshot (and the memory the input tables take), and
the purchase (RFM) family beside a straightforward DuckDB SQL of the RFM part over the same
frames, in the same run, with the ratio.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.config import FeatureConfig
from churnlens.data import Tables, validate_tables
from churnlens.data.validate import category_from_codes
from churnlens.features import build_purchases_features, build_snapshot, build_training_set, training_cutoffs

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class PeakMemory:
    """Peak resident memory while the block runs (sampled every 10 ms)."""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.start = rss_bytes()
        self.peak = self.start
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


def timed(fn: Callable[[], Any]) -> tuple[Any, float, PeakMemory]:
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return out, seconds, mem


# --------------------------------------------------------------------------- fast generator


def _strings(values: list[str], codes: np.ndarray) -> pd.arrays.ArrowStringArray:
    return pd.array(pc.take(pa.array(values), pa.array(codes)), dtype="string")


def _sorted_times(
    rng: np.random.Generator, counts: np.ndarray, start_us: np.ndarray, span_us: np.ndarray
) -> np.ndarray:
    """For each customer, ``counts[i]`` sorted times in [start, start + span), vectorised."""
    n = int(counts.sum())
    owner = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    gaps = rng.exponential(1.0, n + 0).astype(np.float64)
    cs = np.cumsum(gaps)
    ends = np.cumsum(counts)
    seg_total = np.zeros(len(counts))
    if n:  # customers without rows are left out (a trailing one would be out of bounds)
        full = counts > 0
        seg_total[full] = np.add.reduceat(gaps, np.r_[0, ends[:-1]][full])
    before = np.r_[0.0, cs[ends[:-1] - 1]] if len(counts) else np.zeros(0)
    frac = (cs - before[owner]) / (seg_total[owner] + 1.0)  # in (0, 1)
    del cs, gaps
    return (start_us[owner] + frac * span_us[owner]).astype(np.int64)


def generate_tables(
    n_customers: int,
    *,
    purchases_per_customer: float = 50.0,
    program_per_customer: float = 20.0,
    support_per_customer: float = 5.0,
    start: str = "2022-01-01",
    days: int = 1095,
    seed: int = 0,
) -> Tables:
    """Event tables of realistic shape, fast: what :func:`churnlens.data.validate_tables` gives for
    such data (same dtypes, categories, order; see :func:`check_generator`)."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start).value // 1000
    day = 86_400_000_000
    # large_string, as pandas' string dtype holds it: the id columns taken from it need no cast
    ids = pa.array([f"G{i:07d}" for i in range(n_customers)], type=pa.large_string())
    # each customer is observed from a first day to a last day (churned customers stop early)
    first = rng.integers(0, days // 2, n_customers)
    churn = rng.random(n_customers) < 0.35
    last = np.where(churn, first + rng.integers(60, days, n_customers), days).clip(max=days)
    span = (last - first).astype(np.float64) * day
    begin = t0 + first.astype(np.int64) * day
    rate = rng.gamma(2.0, 0.5, n_customers)  # heterogeneity, mean 1

    def counts(mean: float) -> np.ndarray:
        lam = mean * rate * (last - first) / (days * 0.8)
        return rng.poisson(lam).astype(np.int64) + 1

    def owners(c: np.ndarray) -> pa.ChunkedArray:
        return pa.chunked_array(
            [pc.take(ids, pa.array(np.repeat(np.arange(n_customers, dtype=np.int32), c)))]
        )

    c = counts(purchases_per_customer)
    n = int(c.sum())
    amount = np.round(rng.lognormal(3.5, 0.8, n), 2)
    refund = rng.random(n) < 0.03
    amount[refund] = -amount[refund]
    purchases = pd.DataFrame(
        {
            "customer_id": pd.array(owners(c), dtype="string"),
            "timestamp": _sorted_times(rng, c, begin, span).astype("datetime64[us]"),
            "amount": amount,
            "channel": category_from_codes(["web", "store", "app"], rng.choice(3, n, p=[0.5, 0.35, 0.15])),
            "category": category_from_codes(
                ["grocery", "home", "fashion", "toys", "sports", "beauty", "books", "garden"],
                rng.integers(0, 8, n),
            ),
        }
    )
    del amount, refund

    c = counts(program_per_customer)
    n = int(c.sum())
    types = [
        "login",
        "points_earned",
        "offer_received",
        "offer_viewed",
        "points_redeemed",
        "offer_completed",
        "tier_changed",
        "enrolled",
    ]
    code = rng.choice(len(types), n, p=[0.35, 0.3, 0.17, 0.07, 0.04, 0.035, 0.02, 0.015])
    points = np.where(code == 1, rng.integers(5, 200, n), np.where(code == 4, -rng.integers(50, 500, n), 0))
    program = pd.DataFrame(
        {
            "customer_id": pd.array(owners(c), dtype="string"),
            "timestamp": _sorted_times(rng, c, begin, span).astype("datetime64[us]"),
            "event_type": category_from_codes(types, code),
            "points": np.where((code == 1) | (code == 4), points, np.nan).astype("float64"),
            "tier": category_from_codes(
                ["basic", "silver", "gold", "platinum"], np.where(code == 6, rng.integers(0, 4, n), -1)
            ),
        }
    )
    del code, points

    c = counts(support_per_customer) - 1
    n = int(c.sum())

    def flag(p: float, missing: float = 0.05) -> pd.arrays.BooleanArray:
        return pd.arrays.BooleanArray(rng.random(n) < p, rng.random(n) < missing)

    def score(lo: int, hi: int, missing: float) -> np.ndarray:
        return np.where(rng.random(n) < missing, np.nan, rng.integers(lo, hi + 1, n)).astype("float64")

    support = pd.DataFrame(
        {
            "customer_id": pd.array(owners(c), dtype="string"),
            "timestamp": _sorted_times(rng, c, begin, span).astype("datetime64[us]"),
            "channel": category_from_codes(["phone", "email", "chat"], rng.integers(0, 3, n)),
            "topic": category_from_codes(
                ["delivery", "billing", "product", "account"], rng.integers(0, 4, n)
            ),
            "resolved": flag(0.85),
            "first_contact_resolution": flag(0.6),
            "handle_minutes": np.round(rng.gamma(2.0, 6.0, n), 1),
            "complaint": flag(0.2),
            "csat": score(1, 5, 0.6),
            "nps": score(0, 10, 0.8),
            "ces": score(1, 7, 0.7),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "signup_at": (begin - rng.integers(0, 400, n_customers) * day).astype("datetime64[us]"),
            "country": _strings(["FR", "DE", "NL", "BE", "ES"], rng.integers(0, 5, n_customers)),
            "age_band": _strings(
                ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"], rng.integers(0, 6, n_customers)
            ),
        }
    )
    cancel = np.flatnonzero(churn & (rng.random(n_customers) < 0.5) & (last < days))
    cancellations = pd.DataFrame(
        {
            "customer_id": pd.array(pc.take(ids, pa.array(cancel)), dtype="string"),
            "timestamp": (t0 + last[cancel].astype(np.int64) * day + day // 2).astype("datetime64[us]"),
        }
    )
    return Tables(
        purchases=purchases,
        customers=customers,
        program_events=program,
        support_interactions=support,
        cancellations=cancellations,
    )


def check_generator(n_customers: int = 3000) -> None:
    """Raise unless generated tables equal their own validation (dtypes, categories, values, order).

    The benchmark must measure the representation users get from ``load_tables`` /
    ``validate_tables``, not a cheaper or dearer one.
    """
    tables = generate_tables(n_customers, seed=3)
    validated, _ = validate_tables(tables.present())
    for name, frame in tables.present().items():
        pd.testing.assert_frame_equal(frame, validated.present()[name], check_exact=True, obj=name)
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                assert frame[col].dtype == validated.present()[name][col].dtype, (name, col)


# --------------------------------------------------------------------------- reference


def duckdb_rfm_reference(
    purchases: pd.DataFrame, cutoff: pd.Timestamp, windows: tuple[int, ...]
) -> pd.DataFrame:
    """A straightforward DuckDB SQL of the RFM part: recency, frequency and monetary per window."""
    c = f"TIMESTAMP '{cutoff:%Y-%m-%d %H:%M:%S}'"
    cols = [f"date_diff('second', max(timestamp), {c}) / 86400.0 AS recency_days"]
    for w in windows:
        cols.append(f"count(*) FILTER (WHERE timestamp >= {c} - INTERVAL {w} DAY) AS frequency_{w}d")
        cols.append(f"sum(amount) FILTER (WHERE timestamp >= {c} - INTERVAL {w} DAY) AS monetary_{w}d")
    con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB", "preserve_insertion_order": False})
    con.register("purchases", purchases[["customer_id", "timestamp", "amount"]])
    sql = f"SELECT customer_id, {', '.join(cols)} FROM purchases WHERE timestamp < {c} GROUP BY customer_id"
    out = con.execute(sql).df()
    con.close()
    return out


# --------------------------------------------------------------------------- runs


def table_bytes(tables: Tables) -> int:
    return int(sum(t.memory_usage(deep=True).sum() for t in tables.present().values()))


def n_events(tables: Tables) -> int:
    return int(sum(len(t) for n, t in tables.present().items() if n != "customers"))


def bench_snapshot(label: str, tables: Tables, cutoff: pd.Timestamp) -> dict[str, Any]:
    config = FeatureConfig()
    events = n_events(tables)
    build_snapshot(tables.replace(purchases=tables.purchases.iloc[:1000]), cutoff)  # warm up imports
    snap, secs, mem = timed(lambda: build_snapshot(tables, cutoff, config))
    rows, cols = snap.shape
    del snap
    gc.collect()
    _, fam_secs, fam_mem = timed(lambda: build_purchases_features(tables, cutoff, config))
    rfm_tables = Tables(purchases=tables.purchases[["customer_id", "timestamp", "amount"]])
    _, rfm_secs, rfm_mem = timed(lambda: build_purchases_features(rfm_tables, cutoff, config))
    _, ref_secs, ref_mem = timed(lambda: duckdb_rfm_reference(tables.purchases, cutoff, config.windows))
    result = {
        "data": label,
        "customers": len(tables.customers) if tables.customers is not None else None,
        "events": events,
        "input_gb": table_bytes(tables) / 1e9,
        "snapshot_s": secs,
        "events_per_s": events / secs,
        "snapshot_rows": rows,
        "features": cols,
        "peak_rss_gb": mem.peak / 1e9,
        "start_rss_gb": mem.start / 1e9,
        "snapshot_extra_gb": (mem.peak - mem.start) / 1e9,
        "purchases_family_s": fam_secs,
        "rfm_part_s": rfm_secs,
        "duckdb_rfm_ref_s": ref_secs,
        "rfm_ratio": rfm_secs / ref_secs,
        "ref_extra_gb": (ref_mem.peak - ref_mem.start) / 1e9,
    }
    print(
        f"[{label}] {result['customers']:,} customers, {events:,}"
        f" events ({result['input_gb']:.2f} GB in memory)\n"
        f"  full snapshot (4 families): {secs:.1f} s, {events / secs / 1e6:.2f} M events/s, "
        f"{rows:,} active x {cols} features; peak RSS {mem.peak / 1e9:.2f} GB "
        f"(RSS at its start {mem.start / 1e9:.2f} GB, of which input tables {result['input_gb']:.2f}; "
        f"+{(mem.peak - mem.start) / 1e9:.2f} GB during the snapshot)\n"
        f"  purchases family (23 features incl. distinct categories/channels): {fam_secs:.1f} s "
        f"(+{(fam_mem.peak - fam_mem.start) / 1e9:.2f} GB)\n"
        f"  RFM part (same builder on customer_id/timestamp/amount: recency, frequency, monetary per window, "
        f"basket, refunds, gaps, trend): {rfm_secs:.1f} s (+{(rfm_mem.peak - rfm_mem.start) / 1e9:.2f} GB); "
        f"plain DuckDB RFM SQL (recency + count/sum per window): {ref_secs:.1f} s "
        f"(+{(ref_mem.peak - ref_mem.start) / 1e9:.2f} GB); ratio {rfm_secs / ref_secs:.2f}x",
        flush=True,
    )
    return result


def bench_training_set(n_customers: int = 20_000, n_cutoffs: int = 12) -> dict[str, Any]:
    from churnlens.simulate import simulate

    sim = simulate(n_customers, months=24, seed=11)
    cutoffs = training_cutoffs(sim.tables, horizon_days=90, step_days=30)[-n_cutoffs:]
    train, secs, mem = timed(lambda: build_training_set(sim.tables, cutoffs=cutoffs))
    print(
        f"[training set] {n_customers:,} simulated customers, {len(cutoffs)} monthly cutoffs "
        f"({cutoffs[0]:%Y-%m-%d} .. {cutoffs[-1]:%Y-%m-%d}): {secs:.1f} s, {len(train):,} rows x "
        f"{train.shape[1]} columns, churn rate"
        f" {train['churned'].mean():.3f}, peak RSS {mem.peak / 1e9:.2f} GB",
        flush=True,
    )
    return {"training_set_s": secs, "rows": len(train), "cutoffs": len(cutoffs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k simulated customers only")
    parser.add_argument("--sim", type=int, default=100_000, help="customers simulated (default 100k)")
    parser.add_argument(
        "--gen",
        type=int,
        nargs="*",
        default=[100_000, 1_000_000],
        help="customers from the fast generator (default 100k and 1M)",
    )
    parser.add_argument(
        "--event-scale",
        type=float,
        default=1.0,
        help="multiply the generator's events per customer (1.176 gives ~75M events for 1M customers)",
    )
    parser.add_argument("--no-training-set", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sim, args.gen = 20_000, []
    if args.gen:
        check_generator()  # the generator must give what validation gives (dtypes, categories)

    if args.sim:
        from churnlens.simulate import simulate

        t0 = time.perf_counter()
        sim = simulate(args.sim, months=24, seed=5)
        print(f"(simulated {args.sim:,} customers in {time.perf_counter() - t0:.0f} s)", flush=True)
        bench_snapshot(f"sim {args.sim // 1000}k", sim.tables, pd.Timestamp("2024-10-01"))
        del sim
        gc.collect()
    for n in args.gen:
        t0 = time.perf_counter()
        scale = args.event_scale
        tables = generate_tables(
            n,
            purchases_per_customer=50.0 * scale,
            program_per_customer=20.0 * scale,
            support_per_customer=5.0 * scale,
            seed=1,
        )
        print(f"(generated {n:,} customers in {time.perf_counter() - t0:.0f} s)", flush=True)
        bench_snapshot(f"gen {n // 1000}k", tables, pd.Timestamp("2024-10-01"))
        del tables
        gc.collect()
    if not args.no_training_set and not args.quick:
        bench_training_set()


if __name__ == "__main__":
    main()
