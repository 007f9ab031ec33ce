"""The walkthrough notebook runs top to bottom in a kernel of this very Python environment."""

from __future__ import annotations

import base64
import json
import struct
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


def _png_size(encoded: str) -> tuple[int, int]:
    """Width and height of a base64 PNG, from its IHDR chunk."""
    head = base64.b64decode(encoded[:64])
    return struct.unpack(">II", head[16:24])


def test_committed_notebook_shows_its_outputs() -> None:
    """Committed with outputs (make notebook), so a repository host shows the plots, the cards and
    the run comparison; PNGs at a modest resolution keep the file small."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert all(c.execution_count is not None for c in code), "run make notebook"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pngs = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 8  # distributions, ROC, PR, calibration, lift/gain, SHAP beeswarm, 2 dependence plots
    # modest resolution: at most ~100 dpi (the widest figure is 13 inches), under 700 kB of PNG in all
    assert all(width <= 1400 and height <= 1000 for width, height in map(_png_size, pngs))
    assert sum(len(p) for p in pngs) * 3 / 4 < 700_000
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    cards = [h for h in html if "<svg" in h]
    assert len(cards) == 2 and 'lang="en"' in cards[0] and 'lang="fr"' in cards[1]
    assert any("validation AUC" in h and "trial 0" in h for h in html)  # mlflow.search_runs
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs)
    assert NOTEBOOK.stat().st_size < 1_000_000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_walkthrough_runs_top_to_bottom(kernel_name: str, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_name, timeout=600, resources={"metadata": {"path": str(tmp_path)}}
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
    assert "tuning: best trial" in text
    assert images >= 8  # feature distributions + ROC, PR, calibration, lift/gain, SHAP beeswarm and dependence
    assert "[en] customer" in text and "[fr] customer" in text
    # each language printed at least one reason line
    assert text.count("   1. ") >= 2
