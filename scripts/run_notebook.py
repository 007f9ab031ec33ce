"""Execute a notebook in place, in a kernel of this very Python, and keep its outputs.

``make notebook`` runs it on notebooks/01_walkthrough.ipynb so the committed notebook shows its
plots and cards on a repository host. Volatile metadata (execution timings) is dropped so a
re-run only changes what the outputs changed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat

KERNEL = "churnlens-notebook-python3"


def run(path: Path, *, timeout: int = 900) -> None:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (churnlens)", "language": "python"}  # fmt: skip
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        import os

        os.environ["JUPYTER_PATH"] = tmp
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.pop("MPLBACKEND", None)
        nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=timeout,
                                resources={"metadata": {"path": tmp}}).execute()  # fmt: skip
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


if __name__ == "__main__":
    for name in sys.argv[1:] or ["notebooks/01_walkthrough.ipynb"]:
        run(Path(name))
        print(f"executed {name} with its outputs")
