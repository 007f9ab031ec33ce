"""An uplift model directory read as data: booster texts and JSON, checked against a SHA-256 manifest.

The same rules as the churn model's (:mod:`churnlens.model_store`): every file listed in
``churnlens_manifest.json`` with its digest, nothing executable besides MLflow's model-code
file, every booster text checked before LightGBM parses it; nothing is imported or unpickled.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from churnlens.model_store import (
    ARTIFACTS_DIR,
    DamagedModelError,
    ModelStoreError,
    check_booster_text,
    verified_artifacts,
    write_manifest,
)
from churnlens.uplift.model import UPLIFT_METADATA_FILE, UPLIFT_MODEL_CODE, UpliftMetadata, UpliftModel

_COMPONENT = re.compile(r"^uplift_\d+\.txt$")


def _wanted(name: str) -> bool:
    return name == UPLIFT_METADATA_FILE or bool(_COMPONENT.match(name))


def uplift_from_files(files: dict[str, bytes], *, where: str = "the uplift model") -> UpliftModel:
    """Build an :class:`UpliftModel` from verified artifact bytes; refuse damaged ones (naming the file)."""
    import lightgbm as lgb

    try:
        raw = json.loads(files[UPLIFT_METADATA_FILE].decode("utf-8"))
        metadata = UpliftMetadata.from_dict(raw)
        if not metadata.features or not all(isinstance(f, str) for f in metadata.features):
            raise ValueError("no list of features")
        if not isinstance(metadata.categorical_levels, dict):
            raise ValueError("categorical_levels is not a table")
        if set(metadata.components) != set(metadata.actions):
            raise ValueError("components do not match the actions")
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise DamagedModelError(f"model file {where}/{UPLIFT_METADATA_FILE} is damaged ({exc})") from None
    boosters: dict[str, list[tuple[Any, float]]] = {}
    for action in metadata.actions:
        boosters[action] = []
        for spec in metadata.components[action]:
            name = str(spec.get("file", ""))
            if not _COMPONENT.match(name) or name not in files:
                raise ModelStoreError(f"uplift model {where} names a booster {name!r} it does not hold")
            try:
                text = files[name].decode("utf-8")
                check_booster_text(text)
                booster = lgb.Booster(model_str=text)
                weight = float(spec["weight"])
            except (UnicodeDecodeError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
                raise DamagedModelError(f"model file {where}/{name} is damaged: {exc}") from None
            if booster.feature_name() != list(metadata.features):
                raise DamagedModelError(
                    f"model file {where}/{name} does not belong to {UPLIFT_METADATA_FILE}: its features differ"
                )
            boosters[action].append((booster, weight))
    model = UpliftModel.from_parts(boosters, metadata)
    return model


def read_uplift_dir(directory: str | Path) -> UpliftModel:
    """Read an uplift model directory as data: verified files, no code run, nothing unpickled.

    Parameters
    ----------
    directory : str or Path
        As logged by :func:`churnlens.training.uplift.tracking.log_uplift_model` (downloaded) or
        saved by :func:`save_uplift_model`.

    Returns
    -------
    UpliftModel

    Raises
    ------
    ModelStoreError
        The directory does not match its manifest, holds code, or is not an uplift model.
    DamagedModelError
        A damaged model file.
    """
    directory = Path(directory)
    files = verified_artifacts(directory, wanted=_wanted)
    if UPLIFT_METADATA_FILE not in files:
        raise ModelStoreError(
            f"model directory {directory} is not a churnlens uplift model (no {ARTIFACTS_DIR}/{UPLIFT_METADATA_FILE})"
        )
    return uplift_from_files(files, where=str(directory / ARTIFACTS_DIR))


def save_uplift_model(model: UpliftModel, path: str | Path, **pyfunc_kwargs: Any) -> Path:
    """Save ``model`` as an MLflow pyfunc directory (models from code) with its SHA-256 manifest.

    Parameters
    ----------
    model : UpliftModel
    path : str or Path
        Directory to create (must not exist).
    **pyfunc_kwargs
        Passed to ``mlflow.pyfunc.save_model`` (``pip_requirements`` ...).

    Returns
    -------
    Path
        The directory, readable by :func:`read_uplift_dir`.
    """
    import mlflow.pyfunc

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(
            str(path), python_model=str(UPLIFT_MODEL_CODE), artifacts=model.save_artifacts(tmp), **pyfunc_kwargs
        )
    for pycache in path.rglob("__pycache__"):
        shutil.rmtree(pycache, ignore_errors=True)
    write_manifest(path)
    return path
