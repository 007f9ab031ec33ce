"""Serving: load a model, score a base into a campaign list with reasons, explain one customer.

Imports go one way: serving uses ``churnlens.model``, ``monitoring``, ``tracking``,
``features`` and ``data`` and never ``churnlens.training``.
"""

from churnlens.serving.batch import (
    BatchResult,
    ScoreSummary,
    default_cutoff,
    risk_bands,
    score_base,
    write_outputs,
)
from churnlens.serving.card import CustomerExplanation, explain_customer, render_card, write_card
from churnlens.serving.drift import drift_report
from churnlens.serving.explain import reasons_wide, select_reasons, shap_contributions, top_reasons
from churnlens.serving.loader import (
    DEFAULT_MODEL_URI,
    IncompatibleModelError,
    LoadedModel,
    ModelNotFoundError,
    check_compatible,
    load_model,
)
from churnlens.serving.rejects import find_rejects
from churnlens.serving.targeting import (
    Budget,
    CampaignSummary,
    Economics,
    HighRisk,
    Selection,
    Threshold,
    TopN,
    apply_rule,
    select_budget,
    select_threshold,
    select_top_n,
)

__all__ = [
    "DEFAULT_MODEL_URI",
    "BatchResult",
    "Budget",
    "CustomerExplanation",
    "CampaignSummary",
    "Economics",
    "HighRisk",
    "IncompatibleModelError",
    "LoadedModel",
    "ModelNotFoundError",
    "ScoreSummary",
    "Selection",
    "Threshold",
    "TopN",
    "apply_rule",
    "check_compatible",
    "default_cutoff",
    "drift_report",
    "explain_customer",
    "find_rejects",
    "load_model",
    "reasons_wide",
    "render_card",
    "risk_bands",
    "score_base",
    "select_budget",
    "select_reasons",
    "select_threshold",
    "select_top_n",
    "shap_contributions",
    "top_reasons",
    "write_card",
    "write_outputs",
]
