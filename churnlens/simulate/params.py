"""Settings and coefficients of the loyalty-program simulator, declared as data.

All rates are per day. The hidden state of a customer is its engagement
``e = mu + x - engagement_dissatisfaction * d`` (``mu`` a customer-level base, ``x`` an AR(1)
process, ``d`` a decaying dissatisfaction stock fed by bad support experiences), plus the
program state (tier, points, pending offer, last program activity) and the churned flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from churnlens.errors import InputError

#: Static attribute levels and their effect on base engagement ``mu``.
COUNTRIES: tuple[str, ...] = ("FR", "DE", "ES", "IT", "BE", "NL")
COUNTRY_WEIGHTS: tuple[float, ...] = (0.35, 0.2, 0.15, 0.12, 0.1, 0.08)
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS: tuple[float, ...] = (0.12, 0.22, 0.22, 0.2, 0.14, 0.1)
AGE_EFFECT: tuple[float, ...] = (-0.25, -0.1, 0.0, 0.05, 0.1, 0.15)
ACQUISITION_CHANNELS: tuple[str, ...] = ("store", "web", "app", "referral", "paid_social")
ACQUISITION_WEIGHTS: tuple[float, ...] = (0.35, 0.25, 0.15, 0.1, 0.15)
ACQUISITION_EFFECT: tuple[float, ...] = (0.05, 0.0, 0.1, 0.25, -0.3)

PURCHASE_CHANNELS: tuple[str, ...] = ("store", "web", "app")
CATEGORIES: tuple[str, ...] = (
    "grocery",
    "beauty",
    "home",
    "fashion",
    "electronics",
    "sports",
    "toys",
    "books",
)
CATEGORY_WEIGHTS: tuple[float, ...] = (0.3, 0.12, 0.14, 0.14, 0.08, 0.08, 0.06, 0.08)
SUPPORT_CHANNELS: tuple[str, ...] = ("phone", "chat", "email", "store")
SUPPORT_CHANNEL_WEIGHTS: tuple[float, ...] = (0.35, 0.3, 0.25, 0.1)
SUPPORT_TOPICS: tuple[str, ...] = ("delivery", "billing", "product", "loyalty_points", "account", "other")
SUPPORT_TOPIC_WEIGHTS: tuple[float, ...] = (0.25, 0.15, 0.25, 0.15, 0.1, 0.1)

#: Earned points per unit of currency, by tier index (TIER_ORDER).
TIER_POINTS_MULTIPLIER: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0)
#: Lower bounds of annualised trailing spend for silver, gold, platinum.
TIER_THRESHOLDS: tuple[float, ...] = (400.0, 1000.0, 2200.0)


@dataclass(frozen=True)
class ProcessParams:
    """Coefficients of the daily process (see the module docstring for the state)."""

    # population
    share_before_start: float = 0.55
    history_years_before_start: float = 3.0
    member_share: float = 0.75
    mu_sd: float = 0.55
    # engagement
    ar_phi: float = 0.985
    x_sd: float = 0.6
    engagement_dissatisfaction: float = 0.5
    dissatisfaction_decay: float = 0.97
    bad_experience_shock: float = 0.3
    # purchases
    rate_median: float = 0.022
    rate_sdlog: float = 0.6
    rate_engagement: float = 0.9
    offer_rate_boost: float = 1.6
    basket_median: float = 38.0
    basket_sdlog: float = 0.45
    amount_sdlog: float = 0.5
    amount_engagement: float = 0.12
    spend_tau_days: float = 180.0
    # program
    offer_rate: float = 1 / 30
    offer_days: int = 14
    offer_complete_prob: float = 0.6
    login_intercept: float = -2.7
    login_engagement: float = 1.3
    view_intercept: float = -0.3
    view_engagement: float = 1.3
    redeem_rate: float = 0.05
    redeem_unit: float = 500.0
    lapse_days: int = 45
    downgrade_decay: float = 0.985
    # support
    contact_base: float = 0.004
    contact_low_engagement: float = 0.006
    contact_after_purchase: float = 0.01
    contact_open_issue: float = 0.12
    unresolved_threshold: float = -0.7
    followup_quality_penalty: float = -0.3
    issue_expiry_rate: float = 0.02
    # churn hazard: h = h0 * exp(-a e + b d + c lapse + g down + o open + n newness)
    hazard_base: float = 0.0006
    hazard_engagement: float = 1.0
    hazard_dissatisfaction: float = 0.45
    hazard_lapse: float = 0.5
    hazard_downgrade: float = 0.6
    hazard_open_issue: float = 0.5
    hazard_newness: float = 0.8
    newness_days: float = 60.0
    cancel_prob_member: float = 0.6
    cancel_prob_non_member: float = 0.3
    refund_prob: float = 0.03
    refund_prob_dissatisfied: float = 0.08


#: Retention actions of simulated campaigns, in the priority order of the default rules.
ACTIONS: tuple[str, ...] = ("service_recovery", "points_reminder", "win_back")
#: Contact channel of each action (same order).
ACTION_CHANNELS: tuple[str, ...] = ("phone", "email", "email")


@dataclass(frozen=True)
class CampaignSettings:
    """Past retention campaigns: who is selected, which action, the control group and true effects.

    A campaign on send day ``S`` ranks the customers active at ``S`` by a model-free risk
    score computed from what the company has recorded (days since the last purchase, ties
    broken by the overdue ratio: days since the last purchase over the usual gap between
    purchases, the active window for one-purchase customers), keeps the ``size`` riskiest,
    gives each the first action whose rule holds
    (:data:`ACTIONS` order), and holds out a random ``holdout`` share of each action's
    customers as the control group. Treated customers' hidden state changes on ``S``:

    - ``service_recovery`` (rule: a support contact in the last ``support_window_days`` and an
      unresolved one on record, or a complaint in ``complaint_window_days``): the open issue is resolved,
      the dissatisfaction stock keeps ``recovery_dissatisfaction_kept`` of itself, and
      engagement gains ``recovery_restore`` per unit of dissatisfaction removed (part of what
      bad experiences took) plus ``recovery_goodwill`` — it helps mainly customers with an
      open issue;
    - ``points_reminder`` (rule: member with at least ``reminder_min_points`` points recorded —
      earned minus redeemed in the data — and no program activity of their own for more than
      ``lapse_days``): engagement gains ``reminder_boost`` ×
      min(points / redeem_unit, 1) — members with unused points respond, others do not;
    - ``win_back`` (rule: a purchase lapse — the overdue ratio is at least 1, or no purchase
      for more than ``win_back_min_days``): engagement gains ``win_back_boost`` ×
      sigmoid(-win_back_slope × (e - win_back_mid_engagement)) — lapsing customers (low
      engagement ``e``) respond, loyal ones barely change.

    The engagement gain fades like any engagement deviation (AR(1), ``ar_phi`` per day).

    Parameters
    ----------
    n_campaigns : int
        0 (default) simulates no campaign.
    size : int
        Customers selected per campaign (all active ones when fewer); those no rule fits
        are not contacted.
    holdout : float
        Control share of each action's customers, in [0, 1).
    horizon_days : int
        Outcome window ``[S, S + horizon_days)`` of the true uplift; the last campaign is sent
        at least this long before the end of the span.
    first_day : int
        Earliest send day (days after the start of the span).
    """

    n_campaigns: int = 0
    size: int = 5_000
    holdout: float = 0.2
    horizon_days: int = 90
    first_day: int = 180
    # default rules (observable at the send date)
    support_window_days: int = 90
    complaint_window_days: int = 30
    reminder_min_points: float = 250.0
    win_back_min_days: int = 60
    # cost of one contact, by action
    cost_service_recovery: float = 8.0
    cost_points_reminder: float = 0.5
    cost_win_back: float = 5.0
    # true effects
    recovery_dissatisfaction_kept: float = 0.3
    recovery_restore: float = 0.3
    recovery_goodwill: float = 0.05
    reminder_boost: float = 0.6
    win_back_boost: float = 0.8
    win_back_mid_engagement: float = -0.3
    win_back_slope: float = 3.0

    def __post_init__(self) -> None:
        if int(self.n_campaigns) < 0:
            raise InputError(f"campaigns must be 0 or more, got {self.n_campaigns}")
        if int(self.size) < 1:
            raise InputError(f"campaign size must be at least 1, got {self.size}")
        if not 0.0 <= float(self.holdout) < 1.0:
            raise InputError(f"holdout must be in [0, 1), got {self.holdout}")
        if int(self.horizon_days) < 1:
            raise InputError(f"campaign horizon must be at least 1 day, got {self.horizon_days}")
        if int(self.first_day) < 1:
            raise InputError(f"first campaign day must be at least 1, got {self.first_day}")
        if min(self.cost_service_recovery, self.cost_points_reminder, self.cost_win_back) < 0:
            raise InputError("campaign costs must be non-negative")

    @property
    def costs(self) -> tuple[float, ...]:
        """Cost of one contact of each action, in :data:`ACTIONS` order."""
        return (self.cost_service_recovery, self.cost_points_reminder, self.cost_win_back)


@dataclass(frozen=True)
class SimulationSettings:
    """What was simulated: size, span, seed and process coefficients.

    Parameters
    ----------
    n_customers : int
        Customers in the population (signed up before or during the span).
    months : int
        Length of the observed span, from ``start``.
    seed : int
        Root seed; every random stream is derived from it.
    start : str
        First day of observed history (midnight, naive UTC).
    burn_in_days : int
        Days simulated before ``start`` without recording events, so that the base at
        ``start`` already has churned customers, tiers and dissatisfaction in place.
    params : ProcessParams
        Coefficients of the process.
    campaigns : CampaignSettings
        Past retention campaigns (none by default).
    """

    n_customers: int = 20_000
    months: int = 24
    seed: int = 0
    start: str = "2023-01-01"
    burn_in_days: int = 180
    params: ProcessParams = field(default_factory=ProcessParams)
    campaigns: CampaignSettings = field(default_factory=CampaignSettings)

    def __post_init__(self) -> None:
        if int(self.n_customers) < 1:
            raise InputError(f"n_customers must be at least 1, got {self.n_customers}")
        if int(self.months) < 1:
            raise InputError(f"months must be at least 1, got {self.months}")
        if int(self.seed) < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed}")
        if self.burn_in_days < 0:
            raise InputError(f"burn_in_days must be non-negative, got {self.burn_in_days}")
        try:
            start = pd.Timestamp(self.start)
        except (ValueError, TypeError) as exc:
            raise InputError(f"start must be a date like '2023-01-01', got {self.start!r}") from exc
        if start != start.normalize() or start.tz is not None:
            raise InputError(f"start must be a naive midnight date like '2023-01-01', got {self.start!r}")

    @property
    def start_ts(self) -> pd.Timestamp:
        """``start`` as a timestamp."""
        return pd.Timestamp(self.start)

    @property
    def end_ts(self) -> pd.Timestamp:
        """Exclusive end of the observed span."""
        return self.start_ts + pd.DateOffset(months=int(self.months))

    @property
    def n_days(self) -> int:
        """Observed days: day indices ``0 .. n_days - 1``."""
        return int((self.end_ts - self.start_ts).days)
