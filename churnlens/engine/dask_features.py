"""Snapshots and training sets on Dask: the local builders run unchanged per customer bucket.

Every feature is a function of one customer's own events and the cutoff, except two things
that describe the whole base. The levels of categorical columns:
:func:`churnlens.features.build_snapshot` keeps the levels present in its result, sorted; per
bucket these are subsets, so the levels are unified once over all buckets (sorted union)
before output. And the BG/NBD population parameters of the ``btyd`` features: each bucket
sends the counts of its customers' (frequency, recency, T) summaries, the parameters are
fitted once on their sum (:func:`btyd_params_on_dask`) and given to every bucket. The
result then equals the local snapshot exactly.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.data.validate import string_categories
from churnlens.engine.dask_tables import (
    RETRIES,
    StagedData,
    bucket_has_data,
    load_bucket,
    write_parquet_atomic,
)
from churnlens.features import build_snapshot
from churnlens.features import parse_cutoff as normalize_cutoff
from churnlens.features.btyd import UNFITTED, fit_bgnbd, purchase_day_summary

SUCCESS_FILE = "_SUCCESS"
#: Categorical columns and their global levels, beside the parts (Parquet cannot keep the
#: categorical dtype of a column that is empty or all-missing in a part).
LEVELS_FILE = "_levels.json"


def categorical_levels(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Levels of each categorical column."""
    return {
        c: [str(v) for v in frame[c].cat.categories]
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }


def merge_levels(found: Sequence[dict[str, list[str]]]) -> dict[str, list[str]]:
    """Sorted union of the levels of each categorical column over partitions."""
    out: dict[str, set[str]] = {}
    for levels in found:
        for col, values in levels.items():
            out.setdefault(col, set()).update(values)
    return {col: sorted(values) for col, values in out.items()}


def apply_levels(
    frame: pd.DataFrame, levels: dict[str, list[str]], *, string_levels: bool = True
) -> pd.DataFrame:
    """Give categorical columns the global levels (values unchanged).

    ``string_levels`` gives the levels the ``string`` dtype, as a snapshot has them; a local
    training set has plain ``str`` levels (set from a list), so it passes False.
    """
    frame = frame.copy()
    for col, values in levels.items():
        if col not in frame.columns:
            continue
        levels_index = pd.Index(values, dtype="string") if string_levels else pd.Index(values)
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].cat.set_categories(levels_index)
        else:  # an all-missing column read back from Parquet loses its categorical dtype
            frame[col] = pd.Categorical(frame[col].astype("string"), categories=levels_index)
    return frame


def _empty_snapshot(staged: StagedData, cutoff: pd.Timestamp, config: FeatureConfig) -> pd.DataFrame:
    """A typed, empty snapshot: what build_snapshot gives for no active customer."""
    tables = load_bucket_schema(staged)
    return build_snapshot(tables, cutoff, config).iloc[:0]


def load_bucket_schema(staged: StagedData) -> Tables:
    """Empty, typed tables with the columns of the staged data."""
    frames = {
        name: string_categories(pd.read_parquet(Path(staged.root) / "valid" / name / "_empty.parquet"))
        for name in staged.tables
    }
    return Tables(**frames)


def _summary_counts(bucket: int, staged: StagedData, cutoffs: Sequence[pd.Timestamp]) -> list[pd.DataFrame]:
    """Per cutoff, this bucket's customers counted by (frequency, recency, T): all BG/NBD needs of them."""
    if not bucket_has_data(staged, bucket):
        return [pd.DataFrame(columns=["frequency", "recency", "T", "weight"]) for _ in cutoffs]
    purchases = load_bucket(staged, bucket).purchases
    out = []
    for c in cutoffs:
        summary = purchase_day_summary(purchases, c)
        out.append(summary.groupby(["frequency", "recency", "T"]).size().rename("weight").reset_index())
    return out


def btyd_params_on_dask(
    client: Any, staged: StagedData, cutoffs: Sequence[str | pd.Timestamp]
) -> dict[pd.Timestamp, tuple[float, float, float, float]]:
    """BG/NBD population parameters at each cutoff, fitted on every bucket's customers at once
    (the same fit as on the whole tables in one process; :data:`UNFITTED` when it fails)."""
    cutoffs = [normalize_cutoff(c) for c in cutoffs]
    found = client.gather(client.map(_summary_counts, range(staged.n_buckets), staged=staged, cutoffs=cutoffs,
                                     pure=False, retries=RETRIES))
    out = {}
    for i, c in enumerate(cutoffs):
        counts = pd.concat([f[i] for f in found], ignore_index=True).astype("float64")
        merged = counts.groupby(["frequency", "recency", "T"], as_index=False)["weight"].sum()
        params = fit_bgnbd(merged) if len(merged) else None
        out[c] = UNFITTED if params is None else params.as_tuple()
    return out


def with_btyd_params(
    client: Any, staged: StagedData, cutoffs: Sequence[pd.Timestamp], config: FeatureConfig
) -> dict[pd.Timestamp, FeatureConfig]:
    """The feature settings each bucket uses at each cutoff: ``config`` with the whole base's
    BG/NBD parameters (unless ``config`` already fixes them)."""
    cutoffs = [normalize_cutoff(c) for c in cutoffs]
    if config.btyd_params is not None:
        return {c: config for c in cutoffs}
    return {c: replace(config, btyd_params=p) for c, p in btyd_params_on_dask(client, staged, cutoffs).items()}


def _snapshot_part(
    bucket: int, staged: StagedData, cutoff: pd.Timestamp, config: FeatureConfig, part_dir: str
) -> dict[str, list[str]]:
    """Build one bucket's snapshot with the local code; write it; return its levels."""
    if bucket_has_data(staged, bucket):
        snap = build_snapshot(load_bucket(staged, bucket), cutoff, config)
    else:
        snap = _empty_snapshot(staged, cutoff, config)
    write_parquet_atomic(snap.reset_index(), Path(part_dir) / f"part-{bucket:05d}.parquet")
    return categorical_levels(snap)


def _relevel_part(
    bucket: int, part_dir: str, out_dir: str, levels: dict[str, list[str]], categorical_columns: list[str]
) -> int:
    frame = pd.read_parquet(Path(part_dir) / f"part-{bucket:05d}.parquet")
    frame = apply_levels(frame, {**{c: [] for c in categorical_columns}, **levels})
    write_parquet_atomic(frame, Path(out_dir) / f"part-{bucket:05d}.parquet")
    return len(frame)


def publish(tmp_dir: Path, out_dir: Path) -> None:
    """Mark ``tmp_dir`` complete and move it to ``out_dir`` (replacing an older output).

    Until this rename nothing exists at ``out_dir`` that looks complete: a failed run leaves
    only the hidden temp directory, which the caller removes.
    """
    (tmp_dir / SUCCESS_FILE).write_text("ok\n")
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
        tmp_dir.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp_dir.rename(out_dir)


def temp_beside(out_dir: Path) -> Path:
    """A hidden scratch directory beside ``out_dir`` (same file system, so rename is atomic)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")


def snapshot_to_parquet(
    client: Any,
    staged: StagedData,
    cutoff: str | pd.Timestamp,
    out_dir: str | Path,
    config: FeatureConfig = FeatureConfig(),
) -> int:
    """Write the snapshot at ``cutoff`` as partitioned Parquet (one file per customer bucket).

    Each file has ``customer_id`` first then the snapshot columns; every file's categoricals
    carry the same, global levels. ``out_dir`` appears only when every bucket succeeded
    (with a ``_SUCCESS`` marker); on failure nothing is left there.

    Returns
    -------
    int
        Active customers written.
    """
    cutoff = normalize_cutoff(cutoff)
    config = with_btyd_params(client, staged, [cutoff], config)[cutoff]
    out = Path(out_dir).resolve()
    tmp = temp_beside(out)
    parts = tmp / "_parts"
    try:
        levels = client.gather(
            client.map(
                _snapshot_part,
                range(staged.n_buckets),
                staged=staged,
                cutoff=cutoff,
                config=config,
                part_dir=str(parts),
                pure=False,
                retries=RETRIES,
            )
        )
        columns = list(levels[0]) if levels else []
        merged = {c: [] for c in columns} | merge_levels(levels)
        counts = client.gather(
            client.map(
                _relevel_part,
                range(staged.n_buckets),
                part_dir=str(parts),
                out_dir=str(tmp),
                levels=merged,
                categorical_columns=columns,
                pure=False,
                retries=RETRIES,
            )
        )
        shutil.rmtree(parts)
        (tmp / LEVELS_FILE).write_text(json.dumps(merged, indent=1))
        publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return int(sum(counts))


def read_snapshot(path: str | Path) -> pd.DataFrame:
    """A partitioned snapshot written by :func:`snapshot_to_parquet`, indexed and sorted like
    :func:`churnlens.features.build_snapshot`'s result.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a complete output (no ``_SUCCESS`` marker).
    """
    root = Path(path)
    if not (root / SUCCESS_FILE).is_file():
        raise FileNotFoundError(f"{root} is not a complete snapshot (no {SUCCESS_FILE} marker)")
    files = sorted(root.glob("part-*.parquet"))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame = frame.set_index(pd.Index(frame.pop("customer_id").astype("string"), name="customer_id"))
    levels = json.loads((root / LEVELS_FILE).read_text())
    return apply_levels(frame, levels).sort_index()
