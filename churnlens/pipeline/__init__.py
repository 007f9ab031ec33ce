"""Scheduled runs: ``churnlens run --config pipeline.toml`` (:func:`run_pipeline`)."""

from churnlens.pipeline.retrain import ModelState, RetrainDecision, labels_through, retrain_decision
from churnlens.pipeline.run import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_DONE,
    EXIT_FAILURE,
    EXIT_NOTHING_TO_DO,
    PipelineOutcome,
    run_pipeline,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUSY",
    "EXIT_DONE",
    "EXIT_FAILURE",
    "EXIT_NOTHING_TO_DO",
    "ModelState",
    "PipelineOutcome",
    "RetrainDecision",
    "labels_through",
    "retrain_decision",
    "run_pipeline",
]
