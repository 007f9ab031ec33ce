"""What a scheduled pipeline remembers between runs, its lock, and the JSON log of each run.

In ``[pipeline] state_dir``:

- ``run.lock`` — held for the whole run (a file lock, released by the system if the process dies);
- ``state.json`` — the last successful run (its cutoff and a signature of its data and config, so
  a run with nothing new can say so) and every campaign the pipeline planned (whether its report
  is done);
- ``runs/<time>-<run id>.json`` — one log per run: each step's status, summary line, figures and
  time, and the run's outcome.

Nothing here holds a password: URIs are recorded masked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from churnlens.serving.output import atomic_write

STATE_FILE = "state.json"
LOCK_FILE = "run.lock"
RUNS_DIR = "runs"


@dataclass
class PipelineState:
    """The pipeline's memory (``state.json``)."""

    path: Path
    last_run: dict[str, Any] | None = None
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    trainings: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, state_dir: Path) -> PipelineState:
        """The state in ``state_dir`` (empty when the pipeline never ran)."""
        path = state_dir / STATE_FILE
        if not path.is_file():
            return cls(path)
        raw = json.loads(path.read_text())
        return cls(path, raw.get("last_run"), dict(raw.get("campaigns") or {}), list(raw.get("trainings") or []))

    def save(self) -> None:
        """Write the state atomically (readers see the old or the new file, never half of one)."""
        text = json.dumps(
            {"last_run": self.last_run, "campaigns": self.campaigns, "trainings": self.trainings},
            indent=1, default=str,
        )  # fmt: skip
        atomic_write(self.path, lambda tmp: tmp.write_text(text))


@contextmanager
def pipeline_lock(state_dir: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the pipeline's lock; yields False (holding nothing) when another run keeps it for ``wait_s`` seconds."""
    import filelock

    state_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(state_dir / LOCK_FILE), timeout=max(float(wait_s), 0.0))
    try:
        lock.acquire()
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@dataclass
class StepRecord:
    """One step of a run: what it did, in one line, and its figures."""

    step: str
    status: str
    line: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "status": self.status, "line": self.line, "seconds": round(self.seconds, 3),
                "details": self.details}  # fmt: skip


def run_log_name(started_at: datetime, run_id: str) -> str:
    """The log's file name: its start time to the microsecond, then the run id.

    Names sort in the order runs started, even for two runs in the same second (a quick
    "nothing to do" followed by a retry); the run id only keeps them unique.
    """
    return f"{started_at:%Y%m%dT%H%M%S.%f}-{run_id[:8]}"


def write_run_log(state_dir: Path, name: str, record: dict[str, Any]) -> Path:
    """Write one run's JSON log under ``runs/`` and return its path."""
    path = state_dir / RUNS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, default=str)
    return atomic_write(path, lambda tmp: tmp.write_text(text))
