"""The churn model as logged to MLflow: LightGBM booster + calibrator + metadata.

This module is the contract between ``churnlens.training`` (which builds and logs a
:class:`ChurnModel`) and ``churnlens.serving`` (which loads it back). Nothing in it is
pickled from outside: the booster is LightGBM's text format, the calibrator and the
metadata are JSON, so loading a model never unpickles data from a request.

Artifacts of the MLflow pyfunc model:

- ``booster.txt``   LightGBM model text;
- ``calibrator.json`` ``{"method": "isotonic", "x": [...], "y": [...]}`` or
  ``{"method": "platt", "a": .., "b": ..}`` or ``{"method": "none"}``; maps raw margin
  (log-odds) to calibrated probability;
- ``metadata.json`` feature names in order, dtypes, categorical levels, catalog version,
  horizon, label mode, reference statistics, test metrics, training time;
- ``linear.json`` (only when training kept a linear base) the logistic regression on
  recency, frequency and monetary value the trees were boosted from: the raw margin is the
  linear margin plus the trees' margin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.errors import InputError

BOOSTER_FILE = "booster.txt"
CALIBRATOR_FILE = "calibrator.json"
METADATA_FILE = "metadata.json"
LINEAR_FILE = "linear.json"


class FeatureMismatchError(InputError):
    """The data given to a model does not carry the features it was trained on."""


@dataclass
class Calibrator:
    """Monotone map from raw margin to calibrated probability.

    Parameters
    ----------
    method : {"isotonic", "platt", "none"}
    x, y : list of float
        Isotonic knots (margin -> probability), interpolated linearly, clipped at the ends.
    a, b : float
        Platt scaling: ``p = 1 / (1 + exp(-(a * margin + b)))``.
    """

    method: str = "none"
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0

    def transform(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw margins."""
        margin = np.asarray(margin, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(margin, np.asarray(self.x), np.asarray(self.y))
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * margin + self.b)))
        return 1.0 / (1.0 + np.exp(-margin))

    def to_dict(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": list(map(float, self.x)), "y": list(map(float, self.y))}
        if self.method == "platt":
            return {"method": "platt", "a": float(self.a), "b": float(self.b)}
        return {"method": "none"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibrator:
        return cls(**raw)


@dataclass
class LinearBase:
    """Logistic-regression margin the trees are boosted from (LightGBM ``init_score``).

    ``z_j = (signed_log1p(x_j, NaN -> median_j) - mean_j) / scale_j`` and
    ``margin = intercept + sum_j coef_j * z_j``. The means are those of the training rows, so
    ``coef_j * z_j`` is feature j's exact SHAP value for this linear part (features taken as
    independent) and ``intercept`` its base value: linear and tree contributions add up.

    Parameters
    ----------
    features : list of str
        Numeric model features used, in order.
    medians, means, scales, coef : list of float
        Imputation values, standardisation (of the log-scaled values) and coefficients.
    intercept : float
    lower, upper : list of float, optional
        Range of ``z`` seen in training; values outside are clipped to it, so a customer
        unlike any training row (e.g. a huge net refund) is not extrapolated linearly.
        The means are taken before clipping, as in training, where nothing is clipped.
    """

    features: list[str]
    medians: list[float]
    means: list[float]
    scales: list[float]
    coef: list[float]
    intercept: float
    lower: list[float] | None = None
    upper: list[float] | None = None

    def standardised(self, frame: pd.DataFrame) -> np.ndarray:
        """``z`` for each row (rows x features)."""
        return self.standardised_values(frame[self.features].astype("float64").to_numpy(copy=True))

    def standardised_values(self, x: np.ndarray) -> np.ndarray:
        """``z`` of raw values ``x`` (rows x :attr:`features`, float64; modified in place)."""
        missing = np.isnan(x)
        if missing.any():
            x[missing] = np.take(np.asarray(self.medians), np.nonzero(missing)[1])
        x = np.sign(x) * np.log1p(np.abs(x))
        z = (x - np.asarray(self.means)) / np.asarray(self.scales)
        if self.lower is not None and self.upper is not None:
            z = np.clip(z, np.asarray(self.lower), np.asarray(self.upper))
        return z

    def margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds of the linear part."""
        return self.standardised(frame) @ np.asarray(self.coef) + self.intercept

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions (rows x features), summing to ``margin - intercept``."""
        return self.standardised(frame) * np.asarray(self.coef)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "medians": list(map(float, self.medians)),
                "means": list(map(float, self.means)), "scales": list(map(float, self.scales)),
                "coef": list(map(float, self.coef)), "intercept": float(self.intercept),
                "lower": None if self.lower is None else list(map(float, self.lower)),
                "upper": None if self.upper is None else list(map(float, self.upper))}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LinearBase:
        return cls(**raw)


class OpenMetadata:
    """Typed metadata of a logged model whose JSON form may hold keys this version does not know.

    A dataclass mixing this in has an ``extra`` field: unknown keys are kept there on reading
    and written back at the top level, so loading and saving never loses what a newer churnlens
    wrote. ``REQUIRED`` names the keys the JSON must hold; ``KIND`` says which model in errors.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = "model"
    extra: dict[str, Any]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Self:
        """From the JSON form; unknown keys go to ``extra``."""
        if isinstance(raw, cls):
            return raw
        missing = [k for k in cls.REQUIRED if k not in raw]
        if missing:
            raise FeatureMismatchError(f"the {cls.KIND}'s metadata lacks {missing}")
        known = {f.name for f in fields(cls)} - {"extra"}  # type: ignore[arg-type]
        values = {k: v for k, v in raw.items() if k in known}
        extra = {**dict(raw.get("extra") or {}), **{k: v for k, v in raw.items() if k not in known | {"extra"}}}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``extra`` keys at the top level, as they were read)."""
        out = asdict(self)  # type: ignore[call-overload]
        extra = out.pop("extra")
        return {**out, **extra}

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key == "extra" or key not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True)
class ModelMetadata(OpenMetadata, Mapping[str, Any]):
    """What a churn model records besides its booster and calibrator (``metadata.json``).

    Typed fields for everything serving reads; keys a newer churnlens wrote that this one
    does not know are kept in ``extra``, so loading never loses them. It also reads as a
    mapping of its JSON form (``meta["features"]``), for tools that handle it as JSON.

    Parameters
    ----------
    features : list of str
        Model features in training order.
    categorical_levels : dict
        Levels of each categorical feature, as seen in training.
    model_name, catalog_version, label_mode : str
    horizon_days : int
        Label horizon the model predicts.
    feature_config : dict
        The :class:`churnlens.config.FeatureConfig` snapshots were built with.
    tables : list of str
        Input tables present in training.
    trained_at : str
        ISO time of training.
    trained_through : str
        Latest label day of the rows the model was fitted on.
    test_cutoff, validation_cutoff : str
    train_cutoffs : list of str
    test_metrics : dict
    campaign : dict
        The campaign economics training evaluated with.
    reference : dict
        Training reference statistics (:func:`churnlens.monitoring.reference_statistics`).
    trees, num_leaves : int
    linear_base : list of str or None
        Features of the linear base the trees were boosted from.
    linear_base_validation_scores : dict
    extra : dict
        Keys this version does not know.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("features",)
    KIND: ClassVar[str] = "model"

    features: list[str]
    categorical_levels: dict[str, list[str]] = field(default_factory=dict)
    model_name: str = "churnlens"
    catalog_version: str | None = None
    label_mode: str | None = None
    horizon_days: int | None = None
    feature_config: dict[str, Any] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    trained_at: str | None = None
    trained_through: str | None = None
    test_cutoff: str | None = None
    validation_cutoff: str | None = None
    train_cutoffs: list[str] = field(default_factory=list)
    test_metrics: dict[str, float] = field(default_factory=dict)
    campaign: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    trees: int | None = None
    num_leaves: int | None = None
    linear_base: list[str] | None = None
    linear_base_validation_scores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:
        return iter([f for f in self.__dataclass_fields__ if f != "extra"] + list(self.extra))

    def __len__(self) -> int:
        return len(self.__dataclass_fields__) - 1 + len(self.extra)

    def replace(self, **changes: Any) -> ModelMetadata:
        """A copy with some fields changed."""
        from dataclasses import replace

        return replace(self, **changes)


Coders = dict[str, tuple[pd.Index, pd.CategoricalDtype]]


def category_coders(levels: dict[str, list[str]]) -> Coders:
    """Per categorical feature, the training levels as an Index (for lookups) and as a dtype."""
    return {
        name: (pd.Index(values, dtype=object), pd.CategoricalDtype(values)) for name, values in levels.items()
    }


def _missing_features(frame: pd.DataFrame, features: list[str]) -> FeatureMismatchError:
    missing = [f for f in features if f not in frame.columns]
    return FeatureMismatchError(
        f"the data lacks {len(missing)} of the model's {len(features)} features: {missing[:10]}"
        + (" ..." if len(missing) > 10 else "")
        + " (was the model trained on tables this data does not have?)"
    )


#: From this many rows :func:`feature_matrix` fills a column-major matrix column by column.
LARGE_FRAME = 50_000

#: Up to this many categories a column's categories are looked up in a dict of the training
#: levels (pandas' indexer costs tens of microseconds per call: most of a one-customer matrix).
_FEW_CATEGORIES = 64


def feature_matrix(
    frame: pd.DataFrame, metadata: Mapping[str, Any], *, coders: Coders | None = None
) -> np.ndarray:
    """The float64 matrix the model predicts from: its features in training order, numbers as
    float64, categories as the codes of their training levels (unseen or missing: NaN).

    This is exactly the matrix LightGBM builds from a prepared frame itself
    (``_data_from_pandas``), made in a handful of whole-block operations: a served model
    scores one-customer frames, where per-column pandas overhead would be most of the cost.

    Parameters
    ----------
    frame : DataFrame
        A snapshot (one row per customer) carrying at least the model's features.
    metadata : mapping
        The model's metadata (``features``, ``categorical_levels``).
    coders : dict, optional
        ``category_coders(metadata["categorical_levels"])``, when the caller keeps them.

    Raises
    ------
    FeatureMismatchError
        When features are missing.
    """
    features: list[str] = list(metadata["features"])
    positions = frame.columns.get_indexer(features)
    if (positions < 0).any():
        raise _missing_features(frame, features)
    if coders is None:
        coders = category_coders(metadata.get("categorical_levels") or {})
    numeric = [j for j, name in enumerate(features) if name not in coders]
    if len(frame) >= LARGE_FRAME:
        # column by column into a column-major matrix: one pass over the data, no wide temporary
        # (the same values; LightGBM reads either layout)
        out = np.empty((len(frame), len(features)), dtype=np.float64, order="F")
        for j in numeric:
            column = frame.iloc[:, positions[j]]
            if column.dtype != np.float64:
                column = pd.to_numeric(column, errors="coerce")
            out[:, j] = column.to_numpy(dtype="float64", na_value=np.nan)
    else:
        out = np.empty((len(frame), len(features)), dtype=np.float64)
        numbers = frame.iloc[:, positions[numeric]]
        if (numbers.dtypes == np.float64).all():  # already typed (snapshots)
            out[:, numeric] = numbers.to_numpy(dtype=np.float64)
        else:
            for k, j in enumerate(numeric):
                column = pd.to_numeric(numbers.iloc[:, k], errors="coerce")
                out[:, j] = column.to_numpy(dtype="float64", na_value=np.nan)
    for j, name in enumerate(features):
        if name not in coders:
            continue
        index, _ = coders[name]
        column = frame[name]  # columns are unique (get_indexer above)
        if isinstance(column.dtype, pd.CategoricalDtype):  # code the few categories, not every row
            values = column.array
            categories = values.categories
            if categories.dtype != "string":
                categories = categories.astype("string")
            categories = categories.to_numpy(dtype=object)
            if len(categories) <= _FEW_CATEGORIES and len(index) <= 16 * _FEW_CATEGORIES:  # what get_indexer finds
                where = {level: k for k, level in enumerate(index)}
                levels = np.fromiter((where.get(c, -1) for c in categories), dtype=np.intp, count=len(categories))
            else:
                levels = index.get_indexer(categories)
            codes = values.codes
            mapped = np.where(codes < 0, -1, levels[codes] if len(levels) else -1)
        else:
            mapped = index.get_indexer(column.astype("string").to_numpy(dtype=object, na_value=None))
        out[:, j] = np.where(mapped < 0, np.nan, mapped)
    return out


def prepare_features(
    frame: pd.DataFrame, metadata: Mapping[str, Any], *, coders: Coders | None = None
) -> pd.DataFrame:
    """Select and type the model's features from a snapshot, in training order (for LightGBM datasets).

    Categorical columns get exactly the levels seen in training (unseen values become
    missing), numeric columns become float64 — so pandas string dtypes never reach LightGBM.
    The values are those of :func:`feature_matrix`.

    Parameters
    ----------
    frame : DataFrame
        A snapshot (one row per customer) carrying at least the model's features.
    metadata : mapping
        The model's metadata (``features``, ``categorical_levels``).
    coders : dict, optional
        ``category_coders(metadata["categorical_levels"])``, when the caller keeps them.

    Returns
    -------
    DataFrame
        Exactly the model's features, same index as ``frame``.

    Raises
    ------
    FeatureMismatchError
        When features are missing.
    """
    if coders is None:
        coders = category_coders(metadata.get("categorical_levels") or {})
    values = feature_matrix(frame, metadata, coders=coders)
    features: list[str] = list(metadata["features"])
    out = pd.DataFrame(values, index=frame.index, columns=features, copy=False)
    for j, name in enumerate(features):
        if name in coders:
            codes = np.nan_to_num(values[:, j], nan=-1).astype(np.int64)
            out.isetitem(j, pd.Categorical.from_codes(codes, dtype=coders[name][1]))
    return out


def model_matrix(X: pd.DataFrame) -> np.ndarray:
    """The float64 matrix LightGBM makes of a prepared frame: category codes as numbers, missing NaN.

    Exactly what ``Booster.predict`` builds from a DataFrame itself (``_data_from_pandas``),
    without its per-call pandas overhead (most of the cost of scoring a handful of rows).
    """
    categorical = [j for j, dtype in enumerate(X.dtypes) if isinstance(dtype, pd.CategoricalDtype)]
    numeric = sorted(set(range(X.shape[1])) - set(categorical))
    out = np.empty(X.shape, dtype=np.float64)
    out[:, numeric] = X.iloc[:, numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    for j in categorical:
        codes = X.iloc[:, j].cat.codes.to_numpy()
        out[:, j] = np.where(codes < 0, np.nan, codes)
    return out


def _level_codes(levels: Sequence[Any]) -> dict[Any, int]:
    """Training level -> its code (its position, as ``Index.get_indexer`` finds it)."""
    codes: dict[Any, int] = {}
    for code, level in enumerate(levels):
        codes.setdefault(level, code)
    return codes


def _record_value(value: Any, codes: dict[Any, int] | None) -> float:
    """One cell of :meth:`ChurnModel.matrix_of_records`: a number as float64, a category as its
    code (NaN: missing or unseen)."""
    if value is None or value is pd.NA:
        return np.nan
    if codes is None:
        return float(value)
    code = codes.get(value if isinstance(value, str) else str(value))
    return np.nan if code is None else float(code)


#: Below this many rows LightGBM predicts on one thread: starting threads costs more than it saves.
SMALL_BATCH = 256


def _threads(n_rows: int) -> dict[str, int]:
    return {"num_threads": 1} if n_rows < SMALL_BATCH else {}


#: The file MLflow stores as the model's code ("models from code"): logging and saving pass
#: ``python_model=str(MODEL_CODE)`` so a logged churnlens model holds no pickle.
MODEL_CODE = Path(__file__).resolve().with_name("model_code.py")


class ChurnModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: ``predict`` returns calibrated churn probabilities.

    Use :meth:`from_parts` in training. churnlens reads a logged model back as data with
    :func:`churnlens.model_store.read_model_dir` (booster text and JSON checked against the
    manifest, no code run); for MLflow users ``mlflow.pyfunc.load_model(uri).unwrap_python_model()``
    gives this object back too, with :attr:`booster`, :attr:`calibrator` and :attr:`metadata` filled.
    """

    booster: lgb.Booster
    calibrator: Calibrator
    linear: LinearBase | None = None

    @property
    def metadata(self) -> ModelMetadata:
        """The model's :class:`ModelMetadata`."""
        return self.__dict__["_metadata"]

    @metadata.setter
    def metadata(self, value: ModelMetadata | Mapping[str, Any]) -> None:
        self.__dict__["_metadata"] = ModelMetadata.from_dict(value)
        self.__dict__.pop("_coders_cache", None)
        self.__dict__.pop("_record_lookups_cache", None)

    @classmethod
    def from_parts(
        cls,
        booster: lgb.Booster,
        calibrator: Calibrator,
        metadata: ModelMetadata | Mapping[str, Any],
        linear: LinearBase | None = None,
    ) -> ChurnModel:
        model = cls()
        model.booster, model.calibrator, model.metadata, model.linear = booster, calibrator, metadata, linear
        return model

    def __getstate__(self) -> dict[str, Any]:
        # Models are logged from code (churnlens/model_code.py), never pickled; should anyone
        # pickle the wrapper anyway, the parts still travel only as the artifacts above.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def load_context(self, context: Any) -> None:  # noqa: D102 - MLflow hook
        artifacts = context.artifacts
        self.booster = lgb.Booster(model_file=artifacts["booster"])
        self.calibrator = Calibrator.from_dict(json.loads(Path(artifacts["calibrator"]).read_text()))
        self.metadata = ModelMetadata.from_dict(json.loads(Path(artifacts["metadata"]).read_text()))
        linear = artifacts.get("linear")
        self.linear = LinearBase.from_dict(json.loads(Path(linear).read_text())) if linear else None

    def save_artifacts(self, directory: str | Path) -> dict[str, str]:
        """Write the artifacts; return the mapping MLflow's ``artifacts=`` expects."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "booster": directory / BOOSTER_FILE,
            "calibrator": directory / CALIBRATOR_FILE,
            "metadata": directory / METADATA_FILE,
        }
        self.booster.save_model(str(paths["booster"]))
        paths["calibrator"].write_text(json.dumps(self.calibrator.to_dict()))
        paths["metadata"].write_text(json.dumps(self.metadata.to_dict(), indent=1, default=str))
        if self.linear is not None:
            paths["linear"] = directory / LINEAR_FILE
            paths["linear"].write_text(json.dumps(self.linear.to_dict()))
        return {k: str(v) for k, v in paths.items()}

    @property
    def features(self) -> list[str]:
        return list(self.metadata.features)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """See :func:`prepare_features`."""
        return prepare_features(frame, self.metadata, coders=self._coders())

    def _coders(self) -> Coders:
        # Built once per model: a served model prepares many small frames.
        cached = self.__dict__.get("_coders_cache")
        if cached is None:
            cached = self.__dict__["_coders_cache"] = category_coders(self.metadata.categorical_levels)
        return cached

    def _check_levels(self) -> None:
        """The model's categorical levels must be its booster's (LightGBM reads codes as they are)."""
        if self.__dict__.get("_levels_checked") is not self.booster:
            levels = self.metadata.categorical_levels
            ours = [list(levels[f]) for f in self.features if f in levels]
            theirs = [list(x) for x in (getattr(self.booster, "pandas_categorical", None) or [])]
            if theirs != ours:
                raise FeatureMismatchError(
                    f"the model's categorical levels {ours} differ from its booster's {theirs}"
                )
            self.__dict__["_levels_checked"] = self.booster

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """:func:`feature_matrix` of a snapshot: what the model predicts and explains from."""
        self._check_levels()
        return feature_matrix(frame, self.metadata, coders=self._coders())

    def matrix_of_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """:meth:`matrix` of rows given as mappings feature -> value, without a frame.

        Each mapping reads as a snapshot row does: numbers (float, NaN or None when missing),
        categories as text (None or ``pd.NA`` when missing). The matrix is the one
        :meth:`matrix` makes of the same rows as a snapshot, bit for bit (a served model turns
        one customer's JSON straight into it). Every model feature must be present.
        """
        self._check_levels()
        lookups = self._record_lookups()
        out = np.empty((len(records), len(lookups)), dtype=np.float64)
        for i, record in enumerate(records):
            out[i] = [_record_value(record[name], codes) for name, codes in lookups]
        return out

    def _record_lookups(self) -> list[tuple[str, dict[Any, int] | None]]:
        # Built once per model: per feature in model order, None for a number, else level -> code.
        cached = self.__dict__.get("_record_lookups_cache")
        if cached is None:
            levels = self.metadata.categorical_levels
            cached = self.__dict__["_record_lookups_cache"] = [
                (name, None if name not in levels else _level_codes(levels[name])) for name in self.features
            ]
        return cached

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """:func:`model_matrix` of prepared rows, once checked against the booster's own levels."""
        self._check_levels()
        return model_matrix(X)

    def _linear_positions(self) -> list[int]:
        cached = self.__dict__.get("_linear_positions_cache")
        if cached is None or cached[0] is not self.linear:
            positions = [self.features.index(f) for f in self.linear.features] if self.linear else []
            cached = self.__dict__["_linear_positions_cache"] = (self.linear, positions)
        return cached[1]

    def raw_margin(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of churn for a snapshot."""
        return self.margin_of_matrix(self.matrix(frame))

    def margin_of_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Raw margin (trees plus the linear base) of rows of :meth:`matrix`."""
        if len(matrix) == 0:  # LightGBM refuses empty input
            return np.zeros(0)
        margin = self.booster.predict(matrix, raw_score=True, **_threads(len(matrix)))
        if self.linear is None:
            return margin
        z = self.linear.standardised_values(matrix[:, self._linear_positions()].copy())
        return margin + z @ np.asarray(self.linear.coef) + self.linear.intercept

    def contributions_of_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Exact SHAP values (rows x (features + 1), last column the base value) of rows of :meth:`matrix`.

        TreeSHAP of the trees (LightGBM ``pred_contrib``) plus the linear base's exact
        contributions; each row sums to :meth:`margin_of_matrix`.
        """
        if len(matrix) == 0:
            return np.zeros((0, len(self.features) + 1))
        contrib = self.booster.predict(matrix, pred_contrib=True, **_threads(len(matrix)))
        if self.linear is not None:
            positions = self._linear_positions()
            z = self.linear.standardised_values(matrix[:, positions].copy())
            contrib[:, positions] += z * np.asarray(self.linear.coef)
            contrib[:, -1] += self.linear.intercept
        return contrib

    def margin_of_prepared(self, X: pd.DataFrame) -> np.ndarray:
        """Raw margin of rows already through :meth:`prepare`."""
        return self.margin_of_matrix(self._matrix(X))

    def contributions_of_prepared(self, X: pd.DataFrame) -> np.ndarray:
        """:meth:`contributions_of_matrix` of rows already through :meth:`prepare`."""
        return self.contributions_of_matrix(self._matrix(X))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities for a snapshot."""
        return self.calibrator.transform(self.raw_margin(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds, one column per feature plus ``base_value``.

        Rows sum to the raw margin (``raw_margin``).
        """
        contrib = self.contributions_of_matrix(self.matrix(frame))
        cols = self.features + ["base_value"]
        return pd.DataFrame(contrib, index=frame.index, columns=cols)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """MLflow entry point: a frame with ``churn_probability`` per input row."""
        proba = self.predict_proba(model_input)
        return pd.DataFrame({"churn_probability": proba}, index=model_input.index)


def feature_config_of(model: ChurnModel) -> FeatureConfig:
    """The feature configuration the model was trained with (defaults if not recorded)."""
    raw = dict(model.metadata.feature_config or {})
    known = set(FeatureConfig.__dataclass_fields__)
    return FeatureConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known})
