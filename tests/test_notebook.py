"""The walkthrough notebook runs top to bottom in a kernel of this very Python environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_walkthrough.ipynb"
KERNEL = "churnlens-test-python3"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec pointing at ``sys.executable``, found first via JUPYTER_PATH.

    A fresh ``.venv`` has no registered kernel, and a user-level ``python3`` kernelspec may point
    at another interpreter; this one always runs the test's own environment.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "churnlens tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    return KERNEL


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    assert all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_walkthrough_runs_top_to_bottom(kernel_name: str, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_name, timeout=180, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell

    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in code for o in c.outputs
    )
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    assert "active customers x" in text  # the snapshot
    assert "-> champion" in text  # training registered the first version as champion
    assert images >= 6  # feature distributions + ROC, PR, calibration, lift/gain, SHAP summary
    assert "[en] customer" in text and "[fr] customer" in text
    # each language printed at least one reason line
    assert text.count("   1. ") >= 2
