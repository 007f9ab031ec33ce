"""Write a run's output files so that no data is ever destroyed or half-written.

- :func:`check_out_path` refuses outputs inside the data directory or equal to an input.
- :func:`commit_outputs` writes every file of a run into one hidden staging folder beside them,
  then renames them into place together: readers see all the old files or all the new ones, an
  error leaves the old ones untouched and no temporary file behind. A ``kill`` (SIGTERM, SIGHUP)
  or Ctrl-C during the writes is turned into a clean exit that removes the staging folder; only
  SIGKILL, which nothing can catch, leaves it, and the next run writing there removes it (or
  finishes its renames, when the kill came after every file was written).
- Files are created with the mode the umask gives (no private 0600 temporaries).
- CSV outputs defuse spreadsheet formulas: a cell starting with ``= + - @`` (or tab, CR) gets a
  leading apostrophe; Parquet keeps values unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churnlens.errors import InputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Columns holding customer ids: in CSV every id starting with a formula character is defused.
ID_COLUMNS = ("customer_id",)
#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA = re.compile(r"^[=+\-@\t\r]")
#: A number written out (``-12``, ``-1,234.5``, ``-1 234,5 %``): no formula, left as it is in text columns.
_PLAIN_NUMBER = re.compile(r"^[+-]?\d[\d\s,.\u00a0\u202f]*%?$")
_STAGING = re.compile(r"^\.churnlens-(?P<pid>\d+)-[0-9a-f]+\.(?P<state>staging|commit)$")
_JOURNAL = "targets.json"
Writer = Callable[[Path], None]


class Interrupted(SystemExit):
    """The process was asked to stop (SIGTERM/SIGHUP) while writing outputs; raised to clean up."""


def output_format(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"`` from a file name, or an InputError naming the accepted extensions."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"output file {path} must end in .csv or .parquet (got {suffix or 'no extension'!r})")
    return FORMATS[suffix]


# --------------------------------------------------------------------------- refuse


def _real(path: str | Path) -> Path:
    return Path(path).expanduser().resolve(strict=False)


def check_out_path(out: str | Path | Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """Refuse outputs that would overwrite or land inside the inputs.

    Parameters
    ----------
    out : path or iterable of paths
        Every path the run will write (the campaign file and its siblings, or a Dask output folder).
    inputs : iterable of paths
        What the run reads: the data directory (nothing may be written inside it), input
        files (config, a local model directory ...; none may be overwritten). Missing paths
        are fine.

    Raises
    ------
    InputError
        Naming the output and the input it would destroy (exit status 2).
    """
    outs = [out] if isinstance(out, str | Path) else list(out)
    for given in outs:
        target = _real(given)
        for source in inputs:
            root = _real(source)
            same = target == root or (target.exists() and root.exists() and os.path.samefile(target, root))
            if same:
                raise InputError(f"--out {given} is the input {source}: writing it would destroy the input")
            if root.is_dir() and root in target.parents:
                raise InputError(
                    f"--out {given} is inside the input directory {source}: write outputs elsewhere "
                    "(they would overwrite or be read as input tables)"
                )
            if target.is_dir() and target in root.parents:
                raise InputError(f"--out {given} is a folder holding the input {source}; write outputs elsewhere")


# --------------------------------------------------------------------------- commit


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_outputs(directory: str | Path) -> None:
    """Finish or undo what a killed (SIGKILL) run left in ``directory``.

    A staging folder (files still being written) is removed: the old outputs were never
    touched. A commit folder (every file written, renames under way) is rolled forward so the
    run's files are all in place. Folders of live processes are left alone.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        match = _STAGING.match(entry.name)
        if match is None or not entry.is_dir() or _pid_alive(int(match["pid"])):
            continue
        if match["state"] == "commit":
            _roll_forward(entry)
        shutil.rmtree(entry, ignore_errors=True)


def _roll_forward(folder: Path) -> None:
    journal = folder / _JOURNAL
    targets = json.loads(journal.read_text()) if journal.is_file() else {}
    first: OSError | None = None
    for staged, target in targets.items():
        source = folder / staged
        if source.exists():
            try:
                os.replace(source, target)
            except OSError as exc:  # keep renaming the others: a set as complete as possible
                first = first or exc
    if first is not None:
        raise first


@contextmanager
def _stop_signals_raise() -> Iterator[dict[str, Any]]:
    """SIGTERM/SIGHUP raise :class:`Interrupted` (so ``finally`` blocks clean up) instead of ending
    the process at once; while ``state["defer"]`` is set they are held until it is cleared."""
    state: dict[str, Any] = {"defer": False, "pending": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: Any) -> None:
        if state["defer"]:
            state["pending"] = signum
            return
        raise Interrupted(128 + signum)

    names = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {s: signal.signal(s, handler) for s in names}
    try:
        yield state
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def commit_outputs(writers: Mapping[str | Path, Writer]) -> dict[Path, Path]:
    """Write several files as one: all of them, or none.

    Parameters
    ----------
    writers : mapping of path to callable
        Per output path, a function writing that file's content to the path it is given (a
        temporary name in the staging folder). All paths must share one directory (created if
        missing).

    Returns
    -------
    dict of Path to Path
        The files written, by the paths given.

    Raises
    ------
    OSError
        Naming the path at fault (an output path that is a directory, a directory that cannot
        be written ...); the old outputs are then untouched and nothing temporary remains.
    """
    targets = {Path(p): w for p, w in writers.items()}
    if not targets:
        return {}
    parents = {p.resolve(strict=False).parent for p in targets}
    if len(parents) != 1:
        raise ValueError(f"commit_outputs writes files of one directory, got {sorted(map(str, parents))}")
    directory = parents.pop()
    for path in targets:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "cannot write an output file over a directory", str(path))
    directory.mkdir(parents=True, exist_ok=True)
    recover_outputs(directory)
    with _stop_signals_raise() as signals:
        staging = directory / f".churnlens-{os.getpid()}-{secrets.token_hex(6)}.staging"
        os.mkdir(staging)  # mode from the umask, as the files inside
        committing = staging.with_suffix(".commit")
        try:
            journal = {}
            for i, (path, write) in enumerate(targets.items()):
                staged = staging / f"{i}-{path.name}"
                write(staged)
                if not staged.is_file():
                    raise FileNotFoundError(errno.ENOENT, "the output writer wrote no file", str(path))
                journal[staged.name] = str(directory / path.name)
            (staging / _JOURNAL).write_text(json.dumps(journal))
            signals["defer"] = True  # from here on, finish the renames before stopping
            os.rename(staging, committing)
            _roll_forward(committing)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(committing, ignore_errors=True)
            signals["defer"] = False
        if signals["pending"] is not None:
            raise Interrupted(128 + signals["pending"])
    return {path: directory / path.name for path in targets}


def atomic_write(path: str | Path, write: Writer) -> Path:
    """Write one file through :func:`commit_outputs`: readers never see it half-written."""
    return commit_outputs({path: write})[Path(path)]


# --------------------------------------------------------------------------- tables


def defuse_formulas(frame: pd.DataFrame, *, id_columns: Iterable[str] = ID_COLUMNS) -> pd.DataFrame:
    """``frame`` with text cells a spreadsheet would run as formulas prefixed by an apostrophe.

    Ids (``customer_id``) starting with ``= + - @`` (or tab, CR) always get it; other text
    cells too, unless they are a number written out (``-12``, ``-1 234,5``), which no
    spreadsheet runs. For CSV outputs only: the apostrophe shows the text as typed.
    """
    ids = set(id_columns)
    out = frame
    for col in frame.columns:
        values = frame[col]
        if not (
            pd.api.types.is_string_dtype(values.dtype)
            or pd.api.types.is_object_dtype(values.dtype)
            or isinstance(values.dtype, pd.CategoricalDtype)
        ):
            continue
        text = values.astype("string")
        risky = text.str.match(_FORMULA).fillna(False)
        if col not in ids:
            risky &= ~text.str.match(_PLAIN_NUMBER).fillna(False)
        if not risky.any():
            continue
        if out is frame:
            out = frame.copy()
        out[col] = text.where(~risky, "'" + text)
    return out


def table_writer(frame: pd.DataFrame, fmt: str) -> Writer:
    """A :func:`commit_outputs` writer of ``frame`` (index dropped): CSV with formulas defused, or Parquet."""
    if fmt == "csv":
        table = pa.Table.from_pandas(defuse_formulas(frame), preserve_index=False)
        return lambda tmp: pa_csv.write_csv(table, tmp)
    if fmt == "parquet":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        return lambda tmp: pq.write_table(table, tmp)
    raise InputError(f"unknown output format {fmt!r}: expected csv or parquet")


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write one table atomically as CSV or Parquet (by ``fmt`` or the extension); see :func:`table_writer`."""
    return atomic_write(path, table_writer(frame, fmt or output_format(path)))


def sibling(out: str | Path, part: str, suffix: str | None = None) -> Path:
    """``<stem>.<part><suffix>`` beside ``out`` (``campaign.csv`` -> ``campaign.reasons.csv``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.{part}{suffix if suffix is not None else out.suffix}")
