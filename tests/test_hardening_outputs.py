"""Outputs never destroy data (issue 11, rows 3, 8 and 10): refused paths, one commit per run, kills, modes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from churnlens.errors import InputError
from churnlens.serving.output import (
    check_out_path,
    commit_outputs,
    defuse_formulas,
    recover_outputs,
    table_writer,
    write_table,
)

KILL_WAIT_S = 60


def _text_writer(text: str):
    return lambda tmp: Path(tmp).write_text(text)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- refused outputs


def test_out_inside_the_data_directory_or_equal_to_an_input_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "purchases.csv").write_text("customer_id,timestamp,amount\nc1,2024-01-01,3\n")
    config = tmp_path / "churnlens.toml"
    config.write_text("")
    with pytest.raises(InputError, match=r"inside the input directory .*data"):
        check_out_path(data / "purchases.csv", [data])
    with pytest.raises(InputError, match="inside the input directory"):
        check_out_path(data / "sub" / "campaign.csv", [data])
    with pytest.raises(InputError, match="is the input"):
        check_out_path(config, [data, config])
    # a path reaching the input through a symlink or '..' is the same file
    (tmp_path / "link").symlink_to(data)
    with pytest.raises(InputError, match="inside the input directory"):
        check_out_path(tmp_path / "link" / "campaign.csv", [data])
    with pytest.raises(InputError, match="inside the input directory"):
        check_out_path(tmp_path / "out" / ".." / "data" / "x.csv", [data])
    with pytest.raises(InputError, match="holding the input"):
        check_out_path(tmp_path, [data])
    check_out_path([tmp_path / "out" / "campaign.csv", tmp_path / "out" / "campaign.reasons.csv"], [data, config])


# --------------------------------------------------------------------------- one commit


def test_a_failing_writer_leaves_the_old_outputs_and_no_temporary_file(tmp_path):
    commit_outputs({tmp_path / "a.csv": _text_writer("old a"), tmp_path / "b.csv": _text_writer("old b")})

    def broken(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        commit_outputs({tmp_path / "a.csv": _text_writer("new a"), tmp_path / "b.csv": broken})
    assert (tmp_path / "a.csv").read_text() == "old a"
    assert (tmp_path / "b.csv").read_text() == "old b"
    assert _listing(tmp_path) == ["a.csv", "b.csv"]


def test_an_output_that_is_a_directory_fails_before_anything_is_written(tmp_path):
    (tmp_path / "campaign.rejects.csv").mkdir()
    write_table(pd.DataFrame({"a": [1]}), tmp_path / "campaign.csv")
    before = (tmp_path / "campaign.csv").read_bytes()
    with pytest.raises(IsADirectoryError) as caught:
        commit_outputs(
            {
                tmp_path / "campaign.csv": table_writer(pd.DataFrame({"a": [2]}), "csv"),
                tmp_path / "campaign.rejects.csv": table_writer(pd.DataFrame({"a": [2]}), "csv"),
            }
        )
    assert caught.value.filename == str(tmp_path / "campaign.rejects.csv")
    assert (tmp_path / "campaign.csv").read_bytes() == before
    assert _listing(tmp_path) == ["campaign.csv", "campaign.rejects.csv"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_file_modes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        commit_outputs(
            {
                tmp_path / "c.csv": table_writer(pd.DataFrame({"a": [1]}), "csv"),
                tmp_path / "c.parquet": table_writer(pd.DataFrame({"a": [1]}), "parquet"),
                tmp_path / "c.json": _text_writer("{}"),
            }
        )
    finally:
        os.umask(old)
    for name in ("c.csv", "c.parquet", "c.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


# --------------------------------------------------------------------------- kills

_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from churnlens.serving import output

    out, ready, phase = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def slow(text):
        def write(tmp):
            Path(tmp).write_text(text)
            ready.write_text("writing")
            time.sleep(120)  # killed here
        return write

    def fast(text):
        return lambda tmp: Path(tmp).write_text(text)

    if phase == "renaming":  # killed after the first rename of the commit
        import os, signal
        real = output.os.replace
        def replace_then_die(src, dst):
            real(src, dst)
            ready.write_text("renaming")
            os.kill(os.getpid(), signal.SIGKILL)
        output.os.replace = replace_then_die
        writers = {out / "a.csv": fast("new a"), out / "b.csv": fast("new b"), out / "c.json": fast("new c")}
    else:
        writers = {out / "a.csv": fast("new a"), out / "b.csv": slow("new b"), out / "c.json": fast("new c")}
    output.commit_outputs(writers)
    """
)


def _run_child(tmp_path: Path, phase: str) -> subprocess.Popen:
    ready = tmp_path / "ready"
    out = tmp_path / "out"
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(out), str(ready), phase], stderr=subprocess.PIPE)


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + KILL_WAIT_S
    while not path.exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never reached the write"
        time.sleep(0.05)


def _old_outputs(out: Path) -> None:
    out.mkdir()
    commit_outputs({out / "a.csv": _text_writer("old a"), out / "b.csv": _text_writer("old b"),
                    out / "c.json": _text_writer("old c")})  # fmt: skip


def _contents(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_killed_run_keeps_the_old_outputs_and_leaves_nothing_behind(tmp_path, signum):
    out = tmp_path / "out"
    _old_outputs(out)
    child = _run_child(tmp_path, "writing")
    _wait_for(tmp_path / "ready", child)
    child.send_signal(signum)
    assert child.wait(timeout=KILL_WAIT_S) != 0
    assert _contents(out) == {"a.csv": "old a", "b.csv": "old b", "c.json": "old c"}
    assert _listing(out) == ["a.csv", "b.csv", "c.json"]  # no staging folder, no .tmp file


def test_after_sigkill_while_writing_the_old_outputs_stay_and_the_next_run_sweeps_the_staging(tmp_path):
    out = tmp_path / "out"
    _old_outputs(out)
    child = _run_child(tmp_path, "writing")
    _wait_for(tmp_path / "ready", child)
    child.kill()
    child.wait(timeout=KILL_WAIT_S)
    assert _contents(out) == {"a.csv": "old a", "b.csv": "old b", "c.json": "old c"}
    leftovers = [n for n in _listing(out) if n.startswith(".churnlens-")]
    assert len(leftovers) == 1 and leftovers[0].endswith(".staging")  # SIGKILL cannot be caught
    commit_outputs({out / "a.csv": _text_writer("next a")})
    assert _listing(out) == ["a.csv", "b.csv", "c.json"]


def test_after_sigkill_during_the_renames_the_run_is_rolled_forward(tmp_path):
    out = tmp_path / "out"
    _old_outputs(out)
    child = _run_child(tmp_path, "renaming")
    _wait_for(tmp_path / "ready", child)
    assert child.wait(timeout=KILL_WAIT_S) == -signal.SIGKILL
    recover_outputs(out)
    assert _contents(out) == {"a.csv": "new a", "b.csv": "new b", "c.json": "new c"}
    assert _listing(out) == ["a.csv", "b.csv", "c.json"]


def test_recovery_leaves_the_staging_of_a_live_run_alone(tmp_path):
    live = tmp_path / f".churnlens-{os.getpid()}-abc123.staging"
    live.mkdir()
    recover_outputs(tmp_path)
    assert live.is_dir()


# --------------------------------------------------------------------------- formulas


def test_csv_outputs_defuse_formulas_and_parquet_keeps_values(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": pd.array(["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2", "@SUM(A1)", "c1", "-", None],
                                    dtype="string"),  # fmt: skip
            "value_label": ["-1,234.5", "-1 234,5 %", "=1+1", "ok", "\tcmd", "+33 6", None],
            "amount": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    write_table(frame, tmp_path / "c.csv")
    write_table(frame, tmp_path / "c.parquet")
    back = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    assert back["customer_id"].tolist() == [
        "'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-2", "'@SUM(A1)", "c1", "'-", "",
    ]  # fmt: skip
    # numbers written out are no formula; the rest is defused
    assert back["value_label"].tolist() == ["-1,234.5", "-1 234,5 %", "'=1+1", "ok", "'\tcmd", "+33 6", ""]
    assert back["amount"].tolist() == ["-1.5", "2", "3", "4", "5", "6", "7"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "c.parquet"), frame, check_dtype=False)
    safe = frame.iloc[[4]][["customer_id", "amount"]]
    assert defuse_formulas(safe) is safe  # nothing to defuse: no copy


def test_output_module_writes_no_private_temporaries(tmp_path):
    # the old writer used mkstemp (mode 0600, visible name): the staging folder is hidden and goes
    old = os.umask(0o022)
    try:
        path = write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert _listing(tmp_path) == ["x.csv"]
