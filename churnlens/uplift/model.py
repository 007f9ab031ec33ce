"""The uplift model as logged to MLflow: per action, LightGBM regressors whose weighted sum is the uplift.

The uplift of action *a* for a customer with features *x* is the churn probability it takes away::

    uplift_a(x) = P(churn within H | x, no action) - P(churn within H | x, action a)

Every learner churnlens trains (:mod:`churnlens.training.uplift.learners`) ends as a weighted sum
of LightGBM regression models (identity link), so the model is, per action, a list of
``(booster, weight)``:

- T-learner: ``mu_control - mu_treated`` (weights +1 and -1);
- X-learner: ``e * tau_control + (1 - e) * tau_treated`` (``e`` the treated share);
- DR-learner: one regressor of the doubly robust pseudo-outcomes (weight 1);
- ``t_shared`` and ``nested``: one regressor the log-odds T-learner's uplift is distilled into
  (weight 1).

A SHAP value is linear in the model, so the exact TreeSHAP values of the uplift are the same
weighted sum of each booster's TreeSHAP values (LightGBM ``pred_contrib``), and per customer
they add up to the uplift (base value included): the uplift's reasons are exact.

Artifacts (read back as data by :func:`churnlens.uplift.store.read_uplift_dir`, never unpickled):

- ``uplift_metadata.json`` — features, categorical levels, actions and their components'
  files and weights, learner, horizon, label mode, campaigns fitted on, evaluation figures;
- ``uplift_<k>.txt`` — LightGBM model text of each component.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from churnlens.model import Coders, OpenMetadata, category_coders, feature_matrix

UPLIFT_METADATA_FILE = "uplift_metadata.json"
#: Column of the expected uplift of action ``a`` in scores and campaign lists: ``expected_uplift_<a>``.
UPLIFT_COLUMN_PREFIX = "expected_uplift_"
#: The MLflow "models from code" file of the uplift pyfunc (no pickle is logged).
UPLIFT_MODEL_CODE = Path(__file__).resolve().with_name("model_code.py")
#: Below this many rows LightGBM predicts on one thread.
_SMALL_BATCH = 256


def uplift_column(action: str) -> str:
    """The column holding the expected uplift of ``action``."""
    return UPLIFT_COLUMN_PREFIX + action


def component_file(index: int) -> str:
    """Artifact name of the ``index``-th booster of the model."""
    return f"uplift_{index}.txt"


@dataclass(frozen=True)
class UpliftMetadata(OpenMetadata):
    """What an uplift model records besides its boosters (``uplift_metadata.json``).

    Parameters
    ----------
    features : list of str
        Model features in training order (snapshot columns at the contact date).
    categorical_levels : dict
        Levels of each categorical feature, as seen in training.
    actions : list of str
        The actions learnt, in the order of the uplift columns.
    components : dict
        Per action, its boosters: ``[{"file": "uplift_0.txt", "weight": 1.0}, ...]``.
    learner : str
        ``t``, ``x``, ``dr``, ``t_shared`` or ``nested`` (:data:`churnlens.config.UPLIFT_LEARNERS`).
    model_name, catalog_version, label_mode : str
    horizon_days : int
        Outcome window after the contact.
    feature_config : dict
        The :class:`churnlens.config.FeatureConfig` snapshots were built with.
    tables : list of str
        Input tables present in training.
    fit_campaigns : list of str
        Campaigns the model was fitted on (the promotion rule never judges a model on them).
    test_campaigns : list of str
        Campaigns held out to evaluate the learner out of time.
    trained_through : str
        Last day of the latest outcome window the model was fitted on.
    trained_at : str
        ISO time of training.
    skipped : dict
        Actions of the data not learnt, and why.
    reference : dict
        Training medians of the numeric features (``{"feature": {"median": m}}``), for reasons.
    test_metrics : dict
        Out-of-time figures (Qini coefficient, AUUC ...) of the evaluated model.
    extra : dict
        Keys this version does not know.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("features", "actions", "components")
    KIND: ClassVar[str] = "uplift model"

    features: list[str]
    actions: list[str]
    components: dict[str, list[dict[str, Any]]]
    categorical_levels: dict[str, list[str]] = field(default_factory=dict)
    learner: str = "t"
    model_name: str = "churnlens-uplift"
    catalog_version: str | None = None
    label_mode: str | None = None
    horizon_days: int | None = None
    feature_config: dict[str, Any] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    fit_campaigns: list[str] = field(default_factory=list)
    test_campaigns: list[str] = field(default_factory=list)
    trained_through: str | None = None
    trained_at: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style access for :func:`churnlens.model.feature_matrix`."""
        if key in self.extra:
            return self.extra[key]
        return getattr(self, key, default) if key in self.__dataclass_fields__ else default


class UpliftModel(mlflow.pyfunc.PythonModel):
    """Per action, LightGBM regressors whose weighted sum is the expected uplift (see the module docstring).

    ``predict`` (MLflow pyfunc) returns one column ``expected_uplift_<action>`` per action.
    churnlens reads a logged model back as data (:func:`churnlens.uplift.store.read_uplift_dir`).
    """

    @property
    def metadata(self) -> UpliftMetadata:
        """The model's :class:`UpliftMetadata`."""
        return self.__dict__["_metadata"]

    @metadata.setter
    def metadata(self, value: UpliftMetadata | Mapping[str, Any]) -> None:
        self.__dict__["_metadata"] = UpliftMetadata.from_dict(value)
        self.__dict__.pop("_coders_cache", None)

    @property
    def boosters(self) -> dict[str, list[tuple[lgb.Booster, float]]]:
        """Per action, its ``(booster, weight)`` components."""
        return self.__dict__["_boosters"]

    @classmethod
    def from_parts(
        cls, boosters: Mapping[str, list[tuple[lgb.Booster, float]]], metadata: UpliftMetadata | Mapping[str, Any]
    ) -> UpliftModel:
        """Build a model from its boosters per action and its metadata (``components`` is rewritten
        to name the files :meth:`save_artifacts` writes)."""
        model = cls()
        meta = dict(metadata.to_dict() if isinstance(metadata, UpliftMetadata) else metadata)
        components: dict[str, list[dict[str, Any]]] = {}
        index = 0
        for action in meta["actions"]:
            components[action] = []
            for _, weight in boosters[action]:
                components[action].append({"file": component_file(index), "weight": float(weight)})
                index += 1
        meta["components"] = components
        model.metadata = meta
        model.__dict__["_boosters"] = {a: [(b, float(w)) for b, w in boosters[a]] for a in meta["actions"]}
        return model

    def __getstate__(self) -> dict[str, Any]:
        # logged from code (churnlens/uplift/model_code.py), never pickled
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ---------------------------------------------------------------- artifacts

    def save_artifacts(self, directory: str | Path) -> dict[str, str]:
        """Write the artifacts; return the mapping MLflow's ``artifacts=`` expects."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for action in self.actions:
            for (booster, _), spec in zip(self.boosters[action], self.metadata.components[action], strict=True):
                path = directory / spec["file"]
                booster.save_model(str(path))
                paths[spec["file"].removesuffix(".txt")] = path
        meta = directory / UPLIFT_METADATA_FILE
        meta.write_text(json.dumps(self.metadata.to_dict(), indent=1, default=str))
        paths["uplift_metadata"] = meta
        return {k: str(v) for k, v in paths.items()}

    def load_context(self, context: Any) -> None:  # noqa: D102 - MLflow hook
        artifacts = context.artifacts
        metadata = UpliftMetadata.from_dict(json.loads(Path(artifacts["uplift_metadata"]).read_text()))
        boosters = {
            action: [
                (lgb.Booster(model_file=artifacts[spec["file"].removesuffix(".txt")]), float(spec["weight"]))
                for spec in metadata.components[action]
            ]
            for action in metadata.actions
        }
        self.metadata = metadata
        self.__dict__["_boosters"] = boosters

    # ---------------------------------------------------------------- prediction

    @property
    def features(self) -> list[str]:
        return list(self.metadata.features)

    @property
    def actions(self) -> list[str]:
        return list(self.metadata.actions)

    def _coders(self) -> Coders:
        cached = self.__dict__.get("_coders_cache")
        if cached is None:
            cached = self.__dict__["_coders_cache"] = category_coders(self.metadata.categorical_levels)
        return cached

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The float64 matrix the boosters predict from (:func:`churnlens.model.feature_matrix`)."""
        return feature_matrix(frame, self.metadata, coders=self._coders())

    def _check_action(self, action: str) -> None:
        if action not in self.boosters:
            raise KeyError(f"the uplift model has no action {action!r}; it learnt {self.actions}")

    def uplift_of_matrix(self, matrix: np.ndarray, action: str) -> np.ndarray:
        """Expected uplift of ``action`` for rows of :meth:`matrix`."""
        self._check_action(action)
        out = np.zeros(len(matrix))
        if len(matrix) == 0:
            return out
        threads = {"num_threads": 1} if len(matrix) < _SMALL_BATCH else {}
        for booster, weight in self.boosters[action]:
            out += weight * booster.predict(matrix, raw_score=True, **threads)
        return out

    def contributions_of_matrix(self, matrix: np.ndarray, action: str) -> np.ndarray:
        """Exact SHAP values of the uplift of ``action`` (rows x (features + 1), last column the base value).

        The weighted sum of each component's TreeSHAP values; each row adds up to
        :meth:`uplift_of_matrix`.
        """
        self._check_action(action)
        out = np.zeros((len(matrix), len(self.features) + 1))
        if len(matrix) == 0:
            return out
        threads = {"num_threads": 1} if len(matrix) < _SMALL_BATCH else {}
        for booster, weight in self.boosters[action]:
            out += weight * booster.predict(matrix, pred_contrib=True, **threads)
        return out

    def uplift(self, frame: pd.DataFrame, *, matrix: np.ndarray | None = None) -> pd.DataFrame:
        """Expected uplift of every action for every row of a snapshot (columns ``expected_uplift_<a>``)."""
        m = self.matrix(frame) if matrix is None else matrix
        return pd.DataFrame(
            {uplift_column(a): self.uplift_of_matrix(m, a) for a in self.actions}, index=frame.index
        )

    def contributions(self, frame: pd.DataFrame, action: str) -> pd.DataFrame:
        """Exact SHAP values of ``action``'s uplift, one column per feature plus ``base_value``."""
        contrib = self.contributions_of_matrix(self.matrix(frame), action)
        return pd.DataFrame(contrib, index=frame.index, columns=self.features + ["base_value"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """MLflow entry point: the expected uplift of every action per input row."""
        return self.uplift(model_input)
