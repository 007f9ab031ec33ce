"""What a logged model needs to be rebuilt by MLflow in a fresh environment: churnlens itself.

A logged churnlens model is "models from code": MLflow imports :mod:`churnlens.model_code`, so
``mlflow models serve`` / ``predict`` need churnlens installed, at the exact version that
logged the model. When churnlens was installed from a package index, ``churnlens==<version>``
is enough. When it runs from a source checkout (editable or local install), no index serves
that version: its wheel is built once, cached by the content of the package, and logged with
the model; the model's requirements name it by its path inside the model directory, which
MLflow resolves when it builds the environment. churnlens serving never opens the wheel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import churnlens

log = logging.getLogger(__name__)

#: Distribution name.
DIST = "churnlens"
#: Where built wheels are kept between runs (override with CHURNLENS_WHEEL_CACHE).
WHEEL_CACHE_ENV = "CHURNLENS_WHEEL_CACHE"


def churnlens_version() -> str:
    """The exact churnlens version running (``churnlens.__version__``, as installed)."""
    return churnlens.__version__


def source_checkout() -> Path | None:
    """The source directory churnlens runs from (an editable install or the source tree itself), or
    was installed from (``pip install .``); None when it came from a package index."""
    package = Path(churnlens.__file__).resolve().parent
    if (package.parent / "pyproject.toml").is_file() and (package.parent / DIST).is_dir():
        return package.parent
    for dist in metadata.distributions(name=DIST):  # every one: a stray egg-info may come first
        raw = dist.read_text("direct_url.json")
        info = json.loads(raw) if raw else {}
        url = urlparse(info.get("url", ""))
        if "dir_info" in info and url.scheme == "file":
            path = Path(unquote(url.path))
            if (path / "pyproject.toml").is_file():
                return path
    return None


def _package_digest(source: Path) -> str:
    """SHA-256 of pyproject.toml and every file of the package (the wheel's content)."""
    digest = hashlib.sha256()
    files = [source / "pyproject.toml"] + sorted(
        p for p in (source / "churnlens").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    for path in files:
        digest.update(str(path.relative_to(source)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_root() -> Path:
    given = os.environ.get(WHEEL_CACHE_ENV)
    return Path(given) if given else Path.home() / ".cache" / "churnlens" / "wheels"


@cache
def churnlens_wheel() -> Path | None:
    """The wheel of the running churnlens when it runs from a source checkout (built with pip, then
    cached by content), else None (an index serves ``churnlens==<version>``; also None, with a
    warning, when the wheel cannot be built)."""
    source = source_checkout()
    if source is None:
        return None
    folder = _cache_root() / f"{churnlens_version()}-{_package_digest(source)}"
    built = sorted(folder.glob(f"{DIST}-{churnlens_version()}-*.whl"))
    if built:
        return built[0]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp, str(source)],
                check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            wheel = next(Path(tmp).glob(f"{DIST}-*.whl"))
        except (OSError, subprocess.SubprocessError, StopIteration) as exc:  # no pip, no build backend, offline
            stderr = getattr(exc, "stderr", b"") or b""
            log.warning("could not build the churnlens wheel from %s (%s); the model requires churnlens==%s",
                        source, stderr.decode(errors="replace").strip()[-300:] or exc, churnlens_version())
            return None
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / wheel.name
        shutil.copyfile(wheel, target.with_suffix(".part"))
        os.replace(target.with_suffix(".part"), target)  # another process may build the same wheel
    return target


def churnlens_requirement(wheel_in_model: str | None) -> str:
    """The requirement line naming churnlens: the wheel's path inside the model directory, else
    ``churnlens==<version>``."""
    return wheel_in_model if wheel_in_model else f"{DIST}=={churnlens_version()}"
