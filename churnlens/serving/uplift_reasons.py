"""Why a customer's chosen action is expected to work: exact SHAP reasons of the uplift, in English and French.

Every learner churnlens trains stores the uplift as a weighted sum of LightGBM regressors
(identity link, see :mod:`churnlens.uplift.model`), so TreeSHAP is exact on it: per customer
the base value plus the features' contributions equals the expected uplift, in probability.
A **reason** is a catalog concept (a feature's family member group, as for churn reasons)
whose summed contribution *raises* the expected effect of the customer's action; it is worded
by the catalog's sentence of its lead feature (the concept's feature with the largest positive
contribution) and the Fluent message ``uplift-reason`` with the effect in percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churnlens.i18n import Words, check_lang
from churnlens.serving.explain import concept_map, reference_medians
from churnlens.uplift.model import UpliftModel

#: Columns of :func:`uplift_reasons`.
UPLIFT_REASON_COLUMNS = ["customer_id", "action", "rank", "concept", "feature", "contribution", "text"]


def uplift_contributions(model: UpliftModel, snapshot: pd.DataFrame, actions: np.ndarray) -> pd.DataFrame:
    """Exact SHAP values of each row's own action's uplift (features + ``base_value``; rows add up to
    the expected uplift of that action)."""
    matrix = model.matrix(snapshot)
    out = np.zeros((len(snapshot), len(model.features) + 1))
    actions = np.asarray(actions, dtype=object)
    for action in pd.unique(actions):
        rows = np.flatnonzero(actions == action)
        out[rows] = model.contributions_of_matrix(matrix[rows], str(action))
    return pd.DataFrame(out, index=snapshot.index, columns=[*model.features, "base_value"])


def uplift_reasons(
    model: UpliftModel,
    snapshot: pd.DataFrame,
    actions: np.ndarray,
    *,
    n: int = 3,
    lang: str = "en",
    labels: Mapping[str, str] | None = None,
    currency: str = "EUR",
) -> pd.DataFrame:
    """The top ``n`` reasons of each row's expected uplift for its action (see the module docstring).

    Parameters
    ----------
    model : UpliftModel
    snapshot : DataFrame
        The customers (index customer_id) with the model's features.
    actions : array of str
        Each row's action (the one chosen for it).
    n : int
    lang : {"en", "fr"}
    labels : mapping, optional
        Display labels of attributes and categories in ``lang``.
    currency : str

    Returns
    -------
    DataFrame
        :data:`UPLIFT_REASON_COLUMNS`; ``contribution`` is the concept's share of the uplift
        (probability), rows by customer then rank.
    """
    from churnlens.features.catalog import reason_arguments, sentence

    check_lang(lang)
    words = Words(lang, currency)
    contrib = uplift_contributions(model, snapshot, actions)
    features = model.features
    concepts = concept_map(model)
    values = contrib[features].to_numpy(dtype="float64")
    per_concept = values @ concepts.member
    lead = np.full(per_concept.shape, -1, dtype=np.int64)
    best = np.full(per_concept.shape, -np.inf)
    for j in range(len(features)):
        c = concepts.of_feature[j]
        better = values[:, j] > np.maximum(best[:, c], 0.0)
        best[better, c] = values[better, j]
        lead[better, c] = j
    key = np.where((per_concept > 0) & (lead >= 0), per_concept, -np.inf)
    take = min(int(n), key.shape[1])
    top = np.argsort(-key, axis=1, kind="stable")[:, :take]
    reference = reference_medians(model)
    columns = snapshot.columns.tolist()
    ids = snapshot.index.astype("string")
    rows = []
    for i in range(len(snapshot)):
        row = None
        rank = 0
        for c in top[i]:
            if not np.isfinite(key[i, c]):
                break
            j = int(lead[i, c])
            name = features[j]
            if row is None:
                row = dict(zip(columns, snapshot.iloc[i].to_numpy(dtype=object), strict=True))
            try:
                args = reason_arguments(name, row, lang, reference, labels=labels, currency=currency)
            except KeyError:  # a feature outside the catalog
                args = None
            phrase = sentence(name, args, lang) if args is not None else name
            rank += 1
            rows.append((ids[i], str(actions[i]), rank, concepts.concepts[c], name, float(per_concept[i, c]),
                         words("uplift-reason", reason=phrase, points=words.points(per_concept[i, c]))))  # fmt: skip
    out = pd.DataFrame(rows, columns=UPLIFT_REASON_COLUMNS)
    for column in ("customer_id", "action", "concept", "feature", "text"):
        out[column] = out[column].astype("string")
    out["rank"] = out["rank"].astype("int64")
    out["contribution"] = out["contribution"].astype("float64")
    return out


def uplift_reasons_wide(reasons: pd.DataFrame, n: int) -> pd.DataFrame:
    """Sentences as columns ``uplift_reason_1..n`` indexed by customer_id (missing: NA)."""
    columns = [f"uplift_reason_{i}" for i in range(1, n + 1)]
    if reasons.empty:
        return pd.DataFrame(columns=columns, dtype="string").rename_axis("customer_id")
    wide = reasons.pivot(index="customer_id", columns="rank", values="text").reindex(columns=range(1, n + 1))
    wide.columns = columns
    return wide.astype("string")
