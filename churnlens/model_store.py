"""A churnlens model directory read as data: booster text and JSON, checked against a SHA-256 manifest.

churnlens's own commands (``score``, ``serve``, ``explain``, and ``train`` when it re-scores the
champion) never call ``mlflow.pyfunc.load_model``: that would run the model's code file, and a
directory someone else can write to could hold anything. They read a model with
:func:`read_model_dir`, which

1. refuses a directory that is not exactly what churnlens logged: every file must be listed in
   ``churnlens_manifest.json`` with the same SHA-256 digest, nothing listed may be missing, and
   nothing may look executable (a pickle, a Python file other than the model-code file MLflow
   copies into a "models from code" directory, a shared library, a ``code/`` directory ...);
2. checks the booster text's structure before LightGBM parses it (LightGBM crashes the process on
   a truncated model file instead of raising);
3. builds the :class:`~churnlens.model.ChurnModel` from ``booster.txt``, ``calibrator.json``,
   ``metadata.json`` and ``linear.json`` alone. Nothing is imported or unpickled.

Each file is read once: the bytes hashed are the bytes parsed.

``mlflow.pyfunc.load_model`` keeps working on the same directories for MLflow users.

What MLflow writes in a "models from code" pyfunc directory (MLflow 3): ``MLmodel``,
``conda.yaml``, ``python_env.yaml``, ``requirements.txt``, ``input_example.json``,
``serving_input_example.json``, the model-code file (``model_code.py``, named by
``flavors.python_function.model_code_path`` in ``MLmodel``) and ``artifacts/<our files>``; all of
them are in the manifest. Downloading a model (any ``models:/`` or ``runs:/`` URI) adds
``registered_model_meta`` (two YAML keys), written after the manifest: it is the one file
accepted outside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from churnlens.errors import InputError
from churnlens.model import (
    BOOSTER_FILE,
    CALIBRATOR_FILE,
    LINEAR_FILE,
    METADATA_FILE,
    MODEL_CODE,
    Calibrator,
    ChurnModel,
    LinearBase,
)

MANIFEST_FILE = "churnlens_manifest.json"
MANIFEST_FORMAT = 1
#: Where MLflow puts a pyfunc model's ``artifacts=`` inside the model directory.
ARTIFACTS_DIR = "artifacts"
#: Written by MLflow when it downloads a model, after the manifest: plain YAML, never executed.
DOWNLOAD_METADATA = ("registered_model_meta",)
#: File types that hold code or pickled objects (numpy arrays of objects are pickles too).
EXECUTABLE_SUFFIXES = frozenset(
    {
        ".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle", ".pt", ".pth", ".npy", ".npz",
        ".py", ".pyc", ".pyo", ".pyd", ".pyw", ".pyx", ".so", ".dll", ".dylib", ".exe", ".sh",
        ".bash", ".bat", ".cmd", ".ps1", ".jar", ".egg", ".whl", ".ipynb",
    }
)  # fmt: skip
#: The first bytes of a pickle (protocol 2 to 5); protocol 0/1 pickles have no magic and are
#: caught by their name only.
_PICKLE_MAGIC = re.compile(rb"^\x80[\x02-\x05]")
#: Key of churnlens's own wheel among a logged model's artifacts (when it ran from a source
#: checkout): MLflow installs it when it rebuilds the model's environment; churnlens never opens it.
WHEEL_ARTIFACT = "churnlens_wheel"
_OWN_WHEEL = re.compile(r"^artifacts/churnlens-[0-9][A-Za-z0-9.+!_]*-py3-none-any\.whl$")
_MAX_SHOWN = 5


class ModelStoreError(InputError):
    """A model directory churnlens refuses to read (not a churnlens model, tampered, or holding code)."""


class DamagedModelError(ModelStoreError):
    """A model file that cannot be what churnlens wrote (truncated, empty, corrupted)."""


@dataclass(frozen=True)
class ModelFiles:
    """The verified bytes of a model directory's churnlens artifacts."""

    booster: bytes
    calibrator: bytes
    metadata: bytes
    linear: bytes | None


# --------------------------------------------------------------------------- manifest


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listing(directory: Path) -> list[str]:
    """Every entry below ``directory`` as a POSIX relative path; refuse links and special files."""
    out = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise ModelStoreError(f"model directory {directory}: {rel} is a symbolic link; refused")
        if path.is_dir():
            continue
        if not path.is_file():
            raise ModelStoreError(f"model directory {directory}: {rel} is not a regular file; refused")
        out.append(rel)
    return out


def write_manifest(directory: str | Path) -> Path:
    """Write ``churnlens_manifest.json``: the SHA-256 digest of every file of a model directory.

    Parameters
    ----------
    directory : str or Path
        A model directory as MLflow wrote it (``mlflow.pyfunc.save_model`` or a downloaded
        logged model). MLflow's download marker ``registered_model_meta`` is left out.

    Returns
    -------
    Path
        The manifest written.
    """
    directory = Path(directory)
    files = {
        rel: _sha256_file(directory / rel)
        for rel in _listing(directory)
        if rel != MANIFEST_FILE and rel not in DOWNLOAD_METADATA
    }
    path = directory / MANIFEST_FILE
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1, sort_keys=True))
    return path


def _model_code_name(mlmodel: bytes, directory: Path) -> str | None:
    """File name of the models-from-code source MLflow copied into the directory, from ``MLmodel``."""
    import yaml  # MLflow's own dependency; safe_load builds plain data only

    try:
        spec = yaml.safe_load(mlmodel.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DamagedModelError(f"model file {directory / 'MLmodel'} is damaged ({exc})") from None
    pyfunc = ((spec or {}).get("flavors") or {}).get("python_function") or {}
    if not isinstance(pyfunc, dict):
        raise DamagedModelError(f"model file {directory / 'MLmodel'} is damaged (no python_function flavor)")
    if pyfunc.get("code"):
        raise ModelStoreError(
            f"model directory {directory} declares code paths ({pyfunc['code']!r}); churnlens models have none"
        )
    code_path = pyfunc.get("model_code_path")
    return PurePosixPath(str(code_path).replace("\\", "/")).name if code_path else None


def _looks_executable(rel: str, head: bytes, model_code: str | None) -> str | None:
    """Why ``rel`` counts as code (None when it is data). ``head``: its first bytes."""
    if rel == model_code:
        return None
    if _OWN_WHEEL.match(rel) and head.startswith(b"PK"):  # a zip MLflow's pip installs; never read here
        return None
    parts = PurePosixPath(rel).parts
    if parts[0] in ("code", "__pycache__") and len(parts) > 1:
        return f"sits in {parts[0]}/ (code MLflow would import)"
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix in EXECUTABLE_SUFFIXES:
        return f"is a {suffix} file (code or pickled objects)"
    if _PICKLE_MAGIC.match(head):
        return "holds a pickle"
    if head.startswith((b"\x7fELF", b"MZ", b"#!")):
        return "is an executable program"
    return None


def verified_artifacts(
    directory: str | Path, *, wanted: Callable[[str], bool], required: Collection[str] = ()
) -> dict[str, bytes]:
    """Check a model directory against its manifest; return the bytes of the artifacts ``wanted`` keeps.

    The checks of :func:`verify_model_dir`, for any kind of churnlens model (the churn model,
    the uplift model): every file listed with the same digest, nothing unlisted, nothing that
    looks executable besides MLflow's model-code file.

    Parameters
    ----------
    directory : str or Path
    wanted : callable(name) -> bool
        Which files of ``artifacts/`` to return (by name inside ``artifacts/``).
    required : collection of str
        Names inside ``artifacts/`` that must be present.

    Returns
    -------
    dict of str to bytes
        Name inside ``artifacts/`` -> bytes, exactly as hashed.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelStoreError(
            f"model directory {directory} has no {MANIFEST_FILE}: it was not logged by churnlens "
            "(or was logged by a version before manifests); log it again with churnlens"
        )
    try:
        manifest = json.loads(manifest_path.read_bytes())
        listed: dict[str, str] = dict(manifest["files"])
        if manifest.get("format") != MANIFEST_FORMAT or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in listed.items()
        ):
            raise ValueError("unexpected content")
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedModelError(f"model file {manifest_path} is damaged ({exc})") from None
    present = [rel for rel in _listing(directory) if rel != MANIFEST_FILE]
    unlisted = [rel for rel in present if rel not in listed and rel not in DOWNLOAD_METADATA]
    if unlisted:
        raise ModelStoreError(
            f"model directory {directory}: file {unlisted[0]} is not in its manifest (added after the model "
            f"was logged); refused" + (f" — also {unlisted[1:_MAX_SHOWN]}" if len(unlisted) > 1 else "")
        )
    missing = [rel for rel in listed if not (directory / rel).is_file()]
    if missing:
        raise ModelStoreError(f"model directory {directory}: file {missing[0]} of its manifest is missing")
    if "MLmodel" not in listed:
        raise ModelStoreError(f"model directory {directory} is not an MLflow model (no MLmodel file)")
    kept: dict[str, bytes] = {}
    heads: dict[str, bytes] = {}
    for rel in present:
        path = directory / rel
        keep = rel == "MLmodel" or (rel.startswith(ARTIFACTS_DIR + "/") and wanted(rel.split("/", 1)[1]))
        if keep:
            kept[rel] = path.read_bytes()
            digest, heads[rel] = hashlib.sha256(kept[rel]).hexdigest(), kept[rel][:16]
        else:
            digest = _sha256_file(path)
            with path.open("rb") as handle:
                heads[rel] = handle.read(16)
        if rel in listed and digest != listed[rel]:
            raise ModelStoreError(
                f"model directory {directory}: file {rel} does not match its manifest (changed after the model "
                "was logged); refused"
            )
    code_name = _model_code_name(kept["MLmodel"], directory)
    for rel in present:
        why = _looks_executable(rel, heads[rel], code_name)
        if why is not None:
            raise ModelStoreError(f"model directory {directory}: file {rel} {why}; churnlens loads no code, refused")
    for name in required:
        if f"{ARTIFACTS_DIR}/{name}" not in kept:
            raise ModelStoreError(f"model directory {directory} is not a churnlens model (no {ARTIFACTS_DIR}/{name})")
    prefix = ARTIFACTS_DIR + "/"
    return {rel.removeprefix(prefix): data for rel, data in kept.items() if rel.startswith(prefix)}


def verify_model_dir(directory: str | Path) -> ModelFiles:
    """Check a model directory against its manifest and return its artifacts' bytes.

    Parameters
    ----------
    directory : str or Path
        A churnlens model directory (local, or downloaded from a store).

    Returns
    -------
    ModelFiles
        The bytes of ``booster.txt``, ``calibrator.json``, ``metadata.json`` and ``linear.json``
        (None when absent), exactly as hashed.

    Raises
    ------
    ModelStoreError
        No manifest; a file missing from it, absent, or whose digest differs; anything that
        looks executable besides the model-code file; no ``MLmodel``. Each message names the file.
    DamagedModelError
        An unreadable manifest or ``MLmodel``.
    """
    wanted = {BOOSTER_FILE, CALIBRATOR_FILE, METADATA_FILE, LINEAR_FILE}
    kept = verified_artifacts(
        directory, wanted=wanted.__contains__, required=(BOOSTER_FILE, CALIBRATOR_FILE, METADATA_FILE)
    )
    return ModelFiles(
        booster=kept[BOOSTER_FILE],
        calibrator=kept[CALIBRATOR_FILE],
        metadata=kept[METADATA_FILE],
        linear=kept.get(LINEAR_FILE),
    )


# --------------------------------------------------------------------------- booster text

_HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "max_feature_idx", "feature_names", "tree_sizes")
_SPLIT_ARRAYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")


def _key_values(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split()]
    except ValueError:
        raise ValueError(f"{what} holds a non-integer") from None


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise ValueError(f"{what} holds a non-number") from None
    if any(math.isnan(v) for v in values):
        raise ValueError(f"{what} holds NaN")
    return values


def _check_tree(index: int, block: str, n_features: int) -> None:
    if not block.startswith(f"Tree={index}\n"):
        raise ValueError(f"tree {index} does not start where tree_sizes says")
    kv = _key_values(block.splitlines()[1:])
    leaves = _ints(kv.get("num_leaves", ""), f"tree {index} num_leaves")
    if len(leaves) != 1 or leaves[0] < 1:
        raise ValueError(f"tree {index} has no valid num_leaves")
    n = leaves[0]
    if len(_floats(kv.get("leaf_value", ""), f"tree {index} leaf_value")) != n:
        raise ValueError(f"tree {index} leaf_value does not have num_leaves values")
    if n == 1:
        return
    for key in _SPLIT_ARRAYS:
        if key not in kv:
            raise ValueError(f"tree {index} lacks {key}")
    split = _ints(kv["split_feature"], f"tree {index} split_feature")
    children = _ints(kv["left_child"], f"tree {index} left_child") + _ints(
        kv["right_child"], f"tree {index} right_child"
    )
    decision = _ints(kv["decision_type"], f"tree {index} decision_type")
    threshold = _floats(kv["threshold"], f"tree {index} threshold")
    if not len(split) == len(decision) == len(threshold) == n - 1 or len(children) != 2 * (n - 1):
        raise ValueError(f"tree {index} split arrays do not have num_leaves - 1 values")
    if any(not 0 <= f < n_features for f in split):
        raise ValueError(f"tree {index} splits on a feature the model does not have")
    if any(not -n <= c < n - 1 for c in children):  # leaves are ~leaf (-1 .. -n), nodes 0 .. n - 2
        raise ValueError(f"tree {index} points to a node that does not exist")
    categorical_splits = sum(1 for d in decision if d & 1)
    num_cat = _ints(kv.get("num_cat", "0"), f"tree {index} num_cat")
    if len(num_cat) != 1 or num_cat[0] != categorical_splits:
        raise ValueError(f"tree {index} num_cat does not match its categorical splits")
    if num_cat[0]:
        bounds = _ints(kv.get("cat_boundaries", ""), f"tree {index} cat_boundaries")
        words = _ints(kv.get("cat_threshold", ""), f"tree {index} cat_threshold")
        if len(bounds) != num_cat[0] + 1 or bounds[0] != 0 or bounds != sorted(bounds) or bounds[-1] != len(words):
            raise ValueError(f"tree {index} categorical thresholds are inconsistent")
        if any(not 0 <= int(t) < num_cat[0] for t, d in zip(threshold, decision, strict=True) if d & 1):
            raise ValueError(f"tree {index} points to a categorical threshold that does not exist")


def check_booster_text(text: str) -> None:
    """Raise ValueError unless ``text`` has the full structure of a LightGBM model file.

    LightGBM trusts ``tree_sizes`` and the node indices of each tree: a truncated or edited
    file makes it read outside its buffer and kill the process (SIGSEGV/SIGABRT) rather than
    raise. This checks the header, that every tree block starts and ends where ``tree_sizes``
    says, each tree's arrays (lengths, node and feature indices, categorical thresholds), and
    the sections LightGBM's Python package writes after the trees.
    """
    if not text.startswith("tree\n"):
        raise ValueError("it does not start with a LightGBM model header" if text else "it is empty")
    first = text.find("\nTree=0\n")
    trees_start = first + 1 if first >= 0 else -1
    header_end = text.find("\n\n")
    if header_end < 0:
        raise ValueError("its header is incomplete")
    header = _key_values(text[:header_end].splitlines()[1:])
    missing = [k for k in _HEADER_KEYS if k not in header]
    if missing:
        raise ValueError(f"its header lacks {', '.join(missing)}")
    n_features = _ints(header["max_feature_idx"], "max_feature_idx")
    if len(n_features) != 1 or n_features[0] < 0:
        raise ValueError("max_feature_idx is not a count")
    n_features_value = n_features[0] + 1
    if len(header["feature_names"].split()) != n_features_value:
        raise ValueError("feature_names does not have max_feature_idx + 1 names")
    sizes = _ints(header["tree_sizes"], "tree_sizes")
    if not sizes or any(s <= 0 for s in sizes) or trees_start < 0:
        raise ValueError("it holds no tree")
    position = trees_start
    for index, size in enumerate(sizes):
        if position + size > len(text):
            raise ValueError(f"it ends inside tree {index} (truncated)")
        _check_tree(index, text[position : position + size], n_features_value)
        position += size
    if not text.startswith("end of trees\n", position):
        raise ValueError("its trees do not end where tree_sizes says (truncated or edited)")
    tail = text.rstrip("\n").rsplit("\n", 1)[-1]
    if not tail.startswith("pandas_categorical:"):
        raise ValueError("it ends before its last section (truncated)")
    try:
        json.loads(tail.removeprefix("pandas_categorical:"))
    except ValueError:
        raise ValueError("its pandas_categorical section is cut short") from None


# --------------------------------------------------------------------------- read


def _json(data: bytes, name: str, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedModelError(f"model file {where}/{name} is damaged (not JSON: {exc})") from None


def model_from_files(files: ModelFiles, *, where: str = "the model") -> ChurnModel:
    """Build a ChurnModel from verified artifact bytes; refuse damaged ones (exit 2, naming the file)."""
    import lightgbm as lgb

    metadata = _json(files.metadata, METADATA_FILE, where)
    features = metadata.get("features") if isinstance(metadata, dict) else None
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise DamagedModelError(f"model file {where}/{METADATA_FILE} is damaged (no list of features)")
    if not isinstance(metadata.get("categorical_levels", {}), dict):
        raise DamagedModelError(f"model file {where}/{METADATA_FILE} is damaged (categorical_levels)")
    try:
        calibrator = _calibrator(_json(files.calibrator, CALIBRATOR_FILE, where))
        linear = None
        if files.linear is not None:
            linear = LinearBase.from_dict(_json(files.linear, LINEAR_FILE, where))
            if not set(linear.features) <= set(features):
                raise ValueError("linear features are not model features")
    except (TypeError, ValueError) as exc:
        name = CALIBRATOR_FILE if "linear" not in str(exc) else LINEAR_FILE
        raise DamagedModelError(f"model file {where}/{name} is damaged ({exc})") from None
    try:
        text = files.booster.decode("utf-8")
        check_booster_text(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedModelError(f"model file {where}/{BOOSTER_FILE} is damaged: {exc}") from None
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise DamagedModelError(f"model file {where}/{BOOSTER_FILE} is damaged: {exc}") from None
    if booster.feature_name() != features:
        raise DamagedModelError(
            f"model file {where}/{BOOSTER_FILE} does not belong to {METADATA_FILE}: its features differ"
        )
    return ChurnModel.from_parts(booster, calibrator, metadata, linear)


def _calibrator(raw: Any) -> Calibrator:
    if not isinstance(raw, dict) or raw.get("method") not in ("isotonic", "platt", "none"):
        raise ValueError("unknown calibration method")
    calibrator = Calibrator.from_dict(raw)
    if calibrator.method == "isotonic" and (len(calibrator.x) != len(calibrator.y) or not calibrator.x):
        raise ValueError("isotonic knots x and y differ in length")
    return calibrator


def read_model_dir(directory: str | Path) -> ChurnModel:
    """Read a churnlens model directory as data: verified files, no code run, nothing unpickled.

    Parameters
    ----------
    directory : str or Path
        A model directory as logged by :func:`churnlens.training.mlflow_log.log_churn_model`
        (downloaded from the store) or saved by :func:`save_model`.

    Returns
    -------
    ChurnModel

    Raises
    ------
    ModelStoreError
        The directory does not match its manifest or holds code (see :func:`verify_model_dir`).
    DamagedModelError
        A damaged, truncated or empty model file ("model file … is damaged").
    """
    directory = Path(directory)
    files = verify_model_dir(directory)
    return model_from_files(files, where=str(directory / ARTIFACTS_DIR))


def save_model(model: ChurnModel, path: str | Path, **pyfunc_kwargs: Any) -> Path:
    """Save ``model`` as an MLflow pyfunc directory (models from code) with its manifest.

    Parameters
    ----------
    model : ChurnModel
    path : str or Path
        Directory to create (must not exist, as for ``mlflow.pyfunc.save_model``).
    **pyfunc_kwargs
        Passed to ``mlflow.pyfunc.save_model`` (``signature``, ``input_example``,
        ``pip_requirements`` ...).

    Returns
    -------
    Path
        The model directory, readable by :func:`read_model_dir` and ``mlflow.pyfunc.load_model``.
    """
    import mlflow.pyfunc

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(
            str(path), python_model=str(MODEL_CODE), artifacts=model.save_artifacts(tmp), **pyfunc_kwargs
        )
    for pycache in path.rglob("__pycache__"):  # MLflow may import the code file while saving
        shutil.rmtree(pycache, ignore_errors=True)
    write_manifest(path)
    return path
