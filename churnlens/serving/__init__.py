"""Serving: load a model, score a base into a campaign list with reasons, explain one customer.

Every scoring path (batch, Dask, the API, cards) goes through the scoring core
(:mod:`churnlens.serving.core`) with one :class:`~churnlens.config.ScoringSettings`.
Imports go one way: serving uses ``churnlens.model``, ``monitoring``, ``tracking``,
``features`` and ``data`` and never ``churnlens.training``.
"""

from churnlens.config import ActionRule, Economics, ScoringSettings
from churnlens.serving.actions import assign_actions, rule_inputs, suggest_actions
from churnlens.serving.batch import BatchResult, default_cutoff, score_base, write_outputs
from churnlens.serving.campaign_report import CampaignNotMatureError, CampaignReport, campaign_report, read_scored_list
from churnlens.serving.card import CustomerExplanation, explain_customer, render_card, write_card
from churnlens.serving.core import (
    PartitionScores,
    ScoreSummary,
    explain_rows,
    merge_counts,
    merge_selection,
    risk_bands,
    score_partition,
    score_rows,
)
from churnlens.serving.drift import drift_report
from churnlens.serving.explain import reasons_wide, select_reasons, shap_contributions, top_reasons
from churnlens.serving.holdout import contact_plan, draw_holdout
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
    "ActionRule",
    "BatchResult",
    "Budget",
    "CampaignNotMatureError",
    "CampaignReport",
    "CustomerExplanation",
    "CampaignSummary",
    "Economics",
    "HighRisk",
    "IncompatibleModelError",
    "LoadedModel",
    "ModelNotFoundError",
    "PartitionScores",
    "ScoreSummary",
    "ScoringSettings",
    "Selection",
    "Threshold",
    "TopN",
    "apply_rule",
    "assign_actions",
    "campaign_report",
    "check_compatible",
    "contact_plan",
    "default_cutoff",
    "draw_holdout",
    "drift_report",
    "explain_customer",
    "explain_rows",
    "find_rejects",
    "load_model",
    "merge_counts",
    "merge_selection",
    "read_scored_list",
    "reasons_wide",
    "render_card",
    "risk_bands",
    "rule_inputs",
    "score_base",
    "score_partition",
    "score_rows",
    "select_budget",
    "select_reasons",
    "select_threshold",
    "select_top_n",
    "shap_contributions",
    "suggest_actions",
    "top_reasons",
    "write_card",
    "write_outputs",
]
