"""Training settings: LightGBM hyper-parameters, split rules and campaign economics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from churnlens.errors import InputError


@dataclass(frozen=True)
class LightGBMParams:
    """LightGBM hyper-parameters. Defaults favour compact models (small leaves, early stopping):
    explanation cost grows with trees x leaves, and 15-leaf trees matched 31-leaf AUC on
    churn-like data here while explaining 3x faster."""

    learning_rate: float = 0.1
    num_leaves: int = 15
    max_depth: int = -1
    min_child_samples: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    max_rounds: int = 600
    early_stopping_rounds: int = 30

    def to_lgb(self, *, seed: int, threads: int, scale_pos_weight: float) -> dict[str, Any]:
        """LightGBM parameter dict (deterministic, seeded)."""
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "scale_pos_weight": scale_pos_weight,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": threads,
            "verbosity": -1,
        }


@dataclass(frozen=True)
class CampaignEconomics:
    """Value of a retention campaign, used for the profit curve and budget targeting.

    Parameters
    ----------
    value_per_saved_customer : float
        Margin kept when a would-be churner is retained.
    save_rate : float
        Share of contacted churners the campaign retains.
    cost_per_contact : float
        Cost of contacting one customer.
    """

    value_per_saved_customer: float = 100.0
    save_rate: float = 0.2
    cost_per_contact: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.save_rate <= 1:
            raise ValueError("campaign.save_rate must lie in [0, 1]")
        if self.cost_per_contact < 0 or self.value_per_saved_customer < 0:
            raise ValueError("campaign costs and values must be non-negative")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Parameters
    ----------
    horizon_days, step_days : int
        Label horizon and spacing of training cutoffs.
    purge : bool
        When True (default), validation uses the latest cutoff whose horizon ends by the test
        cutoff, and training only cutoffs whose horizon ends by the validation cutoff: no
        label window overlaps a later split, as when the model is used for real (the future
        of a scored customer is unknown). When False, validation is the cutoff just before
        the test cutoff and training all earlier ones; with a horizon longer than the step,
        training labels then cover the test period and the same customers, and trees learn
        them (measured on Online Retail: step 15 days, test ROC AUC 0.77 unpurged vs 0.73
        purged, while the RFM baseline stays at 0.74) — the test metrics flatter the model.
    seed, threads : int
        Reproducibility and parallelism of LightGBM.
    class_weight : {"auto", "none"}
        ``auto`` up-weights churners by sqrt(neg/pos) when they are under 20% of rows (early
        stopping then watches validation AUC, which weighting does not distort);
        calibration on the validation cutoff restores true probabilities afterwards. The
        default ``none`` keeps the unweighted log loss, a proper score, as the stopping rule.
    calibration : {"auto", "isotonic", "platt", "none"}
        ``auto`` picks by cross-validated log loss on the validation cutoff.
    tune_trials : int
        Optuna trials (TPE, pruned) on the backtest's validation cutoffs before the evaluation
        (0: use ``lgbm`` as given); needs the ``tune`` extra.
    distributed_min_rows : int
        With a source that keeps the training rows on a cluster (``--engine dask``): above
        this many training rows LightGBM trains on the cluster (lightgbm.dask); at or below,
        the rows are collected and trained in this process, which is faster on one machine.
    local_max_rows : int
        With such a source, the most rows of one split brought into this process: validation
        and test above it are a deterministic sample of whole customers (so is the training
        sample that fits the linear base and the baselines when LightGBM trains on the cluster).
    linear_base : {"rfm", "auto", "none"}
        ``rfm`` (default) boosts the trees from the RFM logistic regression's margin, so they
        model what recency, frequency and spend do not already explain; ``none`` trains trees
        alone; ``auto`` trains both and keeps the lower validation log loss. Chosen after
        measuring both on the two data sets at hand (benchmarks/RESULTS.md): Online Retail
        test ROC AUC 0.738-0.739 with the base vs 0.734-0.735 without (seeds 1, 2, 42), the
        simulator 0.709-0.711 vs 0.709-0.714; validation could not tell them apart on Online
        Retail (AUC within 0.001), so ``auto`` is not the default.
    backtests : int
        Origins of the rolling-origin backtest that evaluates a run (each a test cutoff with its
        own purged validation and training cutoffs); fewer run when the history is too short.
    cv_folds : int
        Customer-grouped folds of the cross-validation that evaluates a run when not even one
        backtest origin fits (short histories). It is not out of time, and says so.
    calibration_folds : int
        Customer-grouped folds of the cross-fitting that gives the shipped model's calibrator
        out-of-fold margins. Fewer folds cost less (a shipped model costs about 1 + (K - 1) fits of
        its rows) and calibrated as well on the simulator's purchases (4,000 customers, 18
        months; backtest ECE 0.0195 / 0.0193 with 5 / 3 folds, 0.0214 / 0.0216 with 3 / 2 after
        the feature selection; Brier equal to 1e-5), so 2 is the default.
    calibration_cutoffs : int
        The most recent matured cutoffs the shipped model's calibrator is fitted on.
    recent_weight_half_life_days : float
        Weight training rows by ``0.5 ** (age / half_life)``, the age being the days from their
        cutoff to the latest training cutoff of the fit; 0 (default) weights all cutoffs alike.
    """

    horizon_days: int = 90
    step_days: int = 30
    min_history_days: int = 90
    purge: bool = True
    seed: int = 42
    threads: int = 2
    class_weight: Literal["auto", "none"] = "none"
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    tune_trials: int = 0
    distributed_min_rows: int = 5_000_000
    local_max_rows: int = 2_000_000
    linear_base: Literal["rfm", "auto", "none"] = "rfm"
    backtests: int = 3
    cv_folds: int = 5
    calibration_folds: int = 2
    calibration_cutoffs: int = 1
    recent_weight_half_life_days: float = 0.0
    lgbm: LightGBMParams = field(default_factory=LightGBMParams)
    campaign: CampaignEconomics = field(default_factory=CampaignEconomics)

    def __post_init__(self) -> None:
        if self.horizon_days <= 0 or self.step_days <= 0:
            raise ValueError("training.horizon_days and training.step_days must be positive")
        if self.class_weight not in ("auto", "none"):
            raise ValueError("training.class_weight must be auto or none")
        if self.calibration not in ("auto", "isotonic", "platt", "none"):
            raise ValueError("training.calibration must be auto, isotonic, platt or none")
        if self.tune_trials < 0:
            raise ValueError("training.tune_trials must be >= 0")
        if self.distributed_min_rows < 0 or self.local_max_rows < 1:
            raise ValueError("training.distributed_min_rows must be >= 0 and training.local_max_rows >= 1")
        if self.backtests < 1:
            raise InputError(f"training.backtests must be >= 1, got {self.backtests}")
        if self.cv_folds < 3 or self.calibration_folds < 2:
            raise InputError("training.cv_folds must be >= 3 (test, validation and training folds) and "
                             "training.calibration_folds >= 2")
        if self.calibration_cutoffs < 1:
            raise InputError(f"training.calibration_cutoffs must be >= 1, got {self.calibration_cutoffs}")
        if not self.recent_weight_half_life_days >= 0:
            raise InputError("training.recent_weight_half_life_days must be >= 0 (0: no weighting)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """Build from a ``[training]`` config section (sub-tables ``lgbm`` and ``campaign``)."""
        raw = dict(raw)
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"config section [training] has unknown keys: {sorted(unknown)}")
        sub = {"lgbm": LightGBMParams, "campaign": CampaignEconomics}
        for key, sub_cls in sub.items():
            if key in raw:
                sub_known = {f.name for f in fields(sub_cls)}
                bad = set(raw[key]) - sub_known
                if bad:
                    raise ValueError(f"config section [training.{key}] has unknown keys: {sorted(bad)}")
                raw[key] = sub_cls(**raw[key])
        return cls(**raw)
