"""The daily process: one vectorised step over all customers per day (no per-customer loop).

The same :func:`step` drives the recorded history and the Monte Carlo futures used for the
ground truth, so the truth is exact for the process that generated the data. Every state
draw of day ``t`` for customer block ``b`` comes from the stream ``(seed, PROCESS, b, t)``;
cosmetic details of recorded events (time of day, channel, survey answers, ...) come from a
separate stream ``(seed, EMIT, b, t)`` and never feed back into the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from churnlens.simulate import params as P
from churnlens.simulate.params import ProcessParams, SimulationSettings
from churnlens.simulate.population import Population
from churnlens.simulate.rng import DAY_OFFSET, TAG_PROCESS, stream

#: Fixed size of customer blocks; each block has its own random streams, so results do not
#: depend on how many blocks are held in memory at once.
BLOCK_SIZE = 100_000

ProgressFn = Callable[[int], None]


@dataclass
class State:
    """Hidden state of a set of customers at the start of a day."""

    alive: np.ndarray  # bool: not churned
    cancelled: np.ndarray  # bool: churned with a cancellation
    churn_day: np.ndarray  # int64, -NEVER when alive
    x: np.ndarray  # float32, AR(1) engagement deviation
    d: np.ndarray  # float32, dissatisfaction stock
    open_issue: np.ndarray  # bool, unresolved support issue
    last_act: np.ndarray  # int64, last day with program activity
    down: np.ndarray  # float32, recent tier downgrade (1 on the day, decays)
    tier: np.ndarray  # int8, index into TIER_ORDER
    spend: np.ndarray  # float32, exponentially decayed spend
    points: np.ndarray  # float32, points balance
    pending: np.ndarray  # int16, days left on a viewed offer (0 = none)
    newness: np.ndarray  # float32, hazard log-increase of young customers (decays daily)

    def copy(self) -> State:
        return State(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def take(self, index: np.ndarray) -> State:
        return State(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(states: list[State]) -> State:
        return State(**{f.name: np.concatenate([getattr(s, f.name) for s in states]) for f in fields(State)})


def tier_from_spend(spend: np.ndarray, p: ProcessParams) -> np.ndarray:
    """Tier index for a decayed spend (annualised against ``TIER_THRESHOLDS``)."""
    annual = spend * (365.0 / p.spend_tau_days)
    return np.searchsorted(np.asarray(P.TIER_THRESHOLDS), annual, side="right").astype(np.int8)


def init_state(pop: Population, settings: SimulationSettings) -> State:
    """State of every customer on their first simulated day.

    Customers who signed up before the burn-in start from their stationary engagement and
    their expected spend level; customers who sign up later start at tier basic, no spend.
    """
    p = settings.params
    n = pop.n
    rng = stream(settings.seed, TAG_PROCESS, 0, 0)
    x = p.x_sd * rng.standard_normal(n)
    expected_daily = np.exp(
        pop.log_rate + p.rate_engagement * pop.mu + pop.basket_mu + 0.5 * p.amount_sdlog**2
    )
    fresh = pop.forced_day == pop.start_day
    spend = np.where(fresh, 0.0, expected_daily * p.spend_tau_days * rng.uniform(0.6, 1.4, n))
    tier = np.where(pop.member, tier_from_spend(spend, p), 0).astype(np.int8)
    f32 = np.float32
    return State(
        alive=np.ones(n, dtype=bool),
        cancelled=np.zeros(n, dtype=bool),
        churn_day=np.full(n, -1, dtype=np.int64),
        x=x.astype(f32),
        d=np.zeros(n, dtype=f32),
        open_issue=np.zeros(n, dtype=bool),
        last_act=pop.start_day.copy(),
        down=np.zeros(n, dtype=f32),
        tier=tier,
        spend=spend.astype(f32),
        points=np.where(pop.member & ~fresh, np.floor(rng.uniform(0, p.redeem_unit, n)), 0.0).astype(f32),
        pending=np.zeros(n, dtype=np.int16),
        newness=(p.hazard_newness * np.exp(-(pop.start_day - pop.signup_day) / p.newness_days)).astype(f32),
    )


@dataclass
class StepResult:
    """What happened on one day: customer positions (``*_idx``) and per-event values."""

    newly_idx: np.ndarray
    churn_idx: np.ndarray
    churn_inputs: HazardInputs  # what the churners' hazard was computed from, per churn_idx
    cancel_idx: np.ndarray
    tier_idx: np.ndarray
    received_idx: np.ndarray
    viewed_idx: np.ndarray
    buy_idx: np.ndarray
    amount: np.ndarray  # per buy_idx
    completed_idx: np.ndarray
    earned_idx: np.ndarray
    earned_points: np.ndarray  # per earned_idx
    redeem_idx: np.ndarray
    redeem_points: np.ndarray  # per redeem_idx
    login_idx: np.ndarray
    contact_idx: np.ndarray
    followup: np.ndarray  # per contact_idx
    quality: np.ndarray
    resolved: np.ndarray
    complaint: np.ndarray
    fcr: np.ndarray
    contact_engagement: np.ndarray


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


_F = np.float32
_EMPTY = np.zeros(0, dtype=np.int64)


def decay_state(st: State, p: ProcessParams) -> None:
    """The deterministic part of a day's state update, in place (before that day's hazard).

    Engagement deviation, dissatisfaction, downgrade and newness shrink towards 0; the
    engagement innovation is added afterwards by :func:`step` (its mean is 0).
    """
    st.x *= _F(p.ar_phi)
    st.d *= _F(p.dissatisfaction_decay)
    st.down *= _F(p.downgrade_decay)
    st.newness *= _F(np.exp(-1.0 / p.newness_days))


def engagement(pop: Population, st: State, p: ProcessParams) -> np.ndarray:
    """Engagement ``e = mu + x - engagement_dissatisfaction * d`` (float32)."""
    return pop.mu + st.x - _F(p.engagement_dissatisfaction) * st.d


def program_lapse(pop: Population, st: State, t: int, p: ProcessParams) -> np.ndarray:
    """Members without program activity for more than ``lapse_days`` on day ``t``."""
    return pop.member & ((t - st.last_act) > p.lapse_days)


def log_hazard(
    e: np.ndarray,
    d: np.ndarray,
    lapse: np.ndarray,
    down: np.ndarray,
    open_issue: np.ndarray,
    newness: np.ndarray,
    p: ProcessParams,
) -> np.ndarray:
    """The daily churn log-hazard (float32); the daily churn probability is its exponential.

    ``log h = log(hazard_base) - hazard_engagement * e + hazard_dissatisfaction * d
    + hazard_lapse * lapse + hazard_downgrade * down + hazard_open_issue * open_issue + newness``.
    :mod:`churnlens.simulate.drivers` splits it by driver.
    """
    return (
        _F(np.log(p.hazard_base))
        - _F(p.hazard_engagement) * e
        + _F(p.hazard_dissatisfaction) * d
        + _F(p.hazard_lapse) * lapse
        + _F(p.hazard_downgrade) * down
        + _F(p.hazard_open_issue) * open_issue
        + newness
    )


@dataclass
class HazardInputs:
    """The state a day's churn hazard is computed from (after the day's decays), per customer."""

    x: np.ndarray  # float32, engagement deviation
    d: np.ndarray  # float32, dissatisfaction stock
    lapse: np.ndarray  # bool, program lapse
    down: np.ndarray  # float32, recent downgrade
    open_issue: np.ndarray  # bool, unresolved support issue
    newness: np.ndarray  # float32, newness log-increase

    @staticmethod
    def of(pop: Population, st: State, t: int, p: ProcessParams) -> HazardInputs:
        """Inputs of day ``t``'s hazard from ``st`` (already decayed for day ``t``)."""
        return HazardInputs(
            x=st.x,
            d=st.d,
            lapse=program_lapse(pop, st, t, p),
            down=st.down,
            open_issue=st.open_issue,
            newness=st.newness,
        )


def step(
    st: State,
    pop: Population,
    t: int,
    rng: np.random.Generator,
    p: ProcessParams,
    review: bool,
) -> StepResult:
    """Advance ``st`` in place through day ``t`` and return what happened that day.

    Random draws come from ``rng`` in a fixed order: six uniforms per customer first,
    then draws for the customers an event concerns (so the same state and stream always
    give the same day).

    Parameters
    ----------
    st : State
        State at the start of day ``t``; updated to the start of day ``t + 1``.
    pop : Population
        Static attributes of the same customers (same order).
    t : int
        Day index (0 = settings.start).
    rng : numpy.random.Generator
        The day's state stream.
    p : ProcessParams
    review : bool
        Whether tiers are reviewed today (first day of a calendar month).

    Returns
    -------
    StepResult
    """
    n = pop.n
    u = np.multiply(rng.bit_generator.random_raw(3 * n).view(np.uint32), _F(2.0**-32), dtype=_F)
    u = u.reshape(6, n)

    started = pop.start_day <= t
    newly = pop.forced_day == t
    member = pop.member

    # engagement: AR(1) with uniform innovations of unit variance
    decay_state(st, p)
    st.x += _F(p.x_sd * np.sqrt(1.0 - p.ar_phi**2) * np.sqrt(12.0)) * (u[0] - _F(0.5))
    e = engagement(pop, st, p)

    # churn with daily probability exp(log_h)
    active = started & st.alive
    lapse = program_lapse(pop, st, t, p)
    log_h = log_hazard(e, st.d, lapse, st.down, st.open_issue, st.newness, p)
    churn_idx = np.flatnonzero(active & ~newly & (u[1] < np.exp(log_h)))
    churn_inputs = HazardInputs(
        x=st.x[churn_idx],
        d=st.d[churn_idx],
        lapse=lapse[churn_idx],
        down=st.down[churn_idx],
        open_issue=st.open_issue[churn_idx],
        newness=st.newness[churn_idx],
    )
    cancel_p = np.where(member[churn_idx], p.cancel_prob_member, p.cancel_prob_non_member)
    cancel_idx = churn_idx[rng.random(churn_idx.size) < cancel_p]
    st.alive[churn_idx] = False
    st.cancelled[cancel_idx] = True
    st.churn_day[churn_idx] = t
    active[churn_idx] = False
    newly_idx = np.flatnonzero(newly)
    st.newness[newly_idx] = p.hazard_newness

    # tier review (members, monthly)
    tier_idx = _EMPTY
    if review:
        target = tier_from_spend(st.spend, p)
        tier_idx = np.flatnonzero(member & active & (target != st.tier))
        down_idx = tier_idx[target[tier_idx] < st.tier[tier_idx]]
        st.down[down_idx] = 1.0
        st.tier[tier_idx] = target[tier_idx]

    # offers: sent to every member who has not cancelled (the company cannot see silent churn)
    received_idx = np.flatnonzero(member & started & ~st.cancelled & (u[2] < _F(p.offer_rate)))
    cand = received_idx[active[received_idx]]
    p_view = _sigmoid(p.view_intercept + p.view_engagement * e[cand])
    viewed_idx = cand[rng.random(cand.size) < p_view]
    np.subtract(st.pending, 1, out=st.pending, where=st.pending > 0)
    st.pending[viewed_idx] = p.offer_days

    # purchases with daily probability exp(log_rate) (the offer boost while one is pending)
    log_rate = pop.log_rate + _F(p.rate_engagement) * e
    boost = st.pending > 0
    log_rate[boost] += _F(np.log(p.offer_rate_boost))
    buy_mask = active & (u[3] < np.exp(log_rate))
    buy_mask |= newly
    buy_idx = np.flatnonzero(buy_mask)
    amount = np.exp(
        pop.basket_mu[buy_idx].astype(np.float64)
        + p.amount_engagement * e[buy_idx]
        + p.amount_sdlog * rng.standard_normal(buy_idx.size)
    )
    st.spend *= _F(np.exp(-1.0 / p.spend_tau_days))
    st.spend[buy_idx] += amount.astype(_F)
    cand = buy_idx[member[buy_idx] & boost[buy_idx]]
    completed_idx = cand[rng.random(cand.size) < p.offer_complete_prob]
    st.pending[completed_idx] = 0
    earned_sel = member[buy_idx]
    earned_idx = buy_idx[earned_sel]
    earned_points = np.floor(amount[earned_sel] * np.asarray(P.TIER_POINTS_MULTIPLIER)[st.tier[earned_idx]])
    st.points[earned_idx] += earned_points

    # redemptions and logins
    cand = np.flatnonzero(member & active & (st.points >= p.redeem_unit))
    p_redeem = p.redeem_rate * np.minimum(np.exp(0.5 * e[cand]), 3.0)
    redeem_idx = cand[rng.random(cand.size) < p_redeem]
    redeem_points = np.floor(st.points[redeem_idx] / p.redeem_unit) * p.redeem_unit
    st.points[redeem_idx] -= redeem_points
    login_mask = member & active & (u[4] < _sigmoid(_F(p.login_intercept) + _F(p.login_engagement) * e))
    login_idx = np.flatnonzero(login_mask)
    st.last_act[login_idx] = t
    st.last_act[earned_idx] = t
    st.last_act[redeem_idx] = t
    st.last_act[viewed_idx] = t

    # support
    p_contact = _F(p.contact_base) + _F(p.contact_low_engagement) * np.minimum(np.exp(-e), _F(4.0))
    p_contact[buy_idx] += _F(p.contact_after_purchase)
    p_contact += _F(p.contact_open_issue) * st.open_issue
    contact_idx = np.flatnonzero(active & (u[5] < p_contact))
    followup = st.open_issue[contact_idx]
    quality = rng.standard_normal(contact_idx.size) + p.followup_quality_penalty * followup
    resolved = quality > p.unresolved_threshold
    ce = e[contact_idx].astype(np.float64)
    complaint = rng.random(contact_idx.size) < _sigmoid(-2.2 - 1.5 * quality - 0.5 * ce)
    bad_idx = contact_idx[~resolved | (complaint & (quality < -0.3))]
    st.d[bad_idx] += 1.0
    st.x[bad_idx] -= p.bad_experience_shock
    open_idx = np.flatnonzero(st.open_issue)
    open_idx = open_idx[~np.isin(open_idx, contact_idx, assume_unique=True)]
    st.open_issue[open_idx[rng.random(open_idx.size) < p.issue_expiry_rate]] = False
    st.open_issue[contact_idx] = ~resolved
    fcr = resolved & ~followup & (quality > -0.2)

    return StepResult(
        newly_idx=newly_idx,
        churn_idx=churn_idx,
        churn_inputs=churn_inputs,
        cancel_idx=cancel_idx,
        tier_idx=tier_idx,
        received_idx=received_idx,
        viewed_idx=viewed_idx,
        buy_idx=buy_idx,
        amount=amount,
        completed_idx=completed_idx,
        earned_idx=earned_idx,
        earned_points=earned_points,
        redeem_idx=redeem_idx,
        redeem_points=redeem_points,
        login_idx=login_idx,
        contact_idx=contact_idx,
        followup=followup,
        quality=quality,
        resolved=resolved,
        complaint=complaint,
        fcr=fcr,
        contact_engagement=ce,
    )


def review_days(settings: SimulationSettings, first: int, last: int) -> set[int]:
    """Day indices in ``[first, last)`` that fall on the first day of a calendar month."""
    start = np.datetime64(settings.start_ts.date(), "D")
    days = np.arange(first, last)
    dates = start + days
    month_start = dates.astype("datetime64[M]").astype("datetime64[D]")
    return set(days[dates == month_start].tolist())


def block_bounds(n: int) -> list[tuple[int, int, int]]:
    """(block number, first customer, end customer) for fixed-size blocks."""
    return [(b, lo, min(lo + BLOCK_SIZE, n)) for b, lo in enumerate(range(0, n, BLOCK_SIZE))]


def run_block(
    settings: SimulationSettings,
    pop: Population,
    state: State,
    block: int,
    first_day: int,
    last_day: int,
    *,
    on_day: Callable[[int, StepResult, State], None] | None = None,
    snapshot_days: tuple[int, ...] = (),
    progress: ProgressFn | None = None,
    before_day: Callable[[int, State], None] | None = None,
) -> dict[int, State]:
    """Run one customer block through days ``[first_day, last_day)``.

    Parameters
    ----------
    settings : SimulationSettings
    pop : Population
        The block's static attributes.
    state : State
        The block's state at the start of ``first_day``; updated in place.
    block : int
        Block number (selects the random streams).
    first_day, last_day : int
    on_day : callable, optional
        Called as ``on_day(t, result, state)`` after each day (event recording).
    snapshot_days : tuple of int
        Days ``C`` at whose start (after day ``C - 1``) a copy of the state is kept.
    progress : callable, optional
        Called with 1 after each day.
    before_day : callable, optional
        Called as ``before_day(t, state)`` before each day is stepped (campaign actions sent
        that day change the state here, after the snapshot of the start of the day).

    Returns
    -------
    dict
        Day ``C`` -> copy of the state at the start of ``C`` (before ``before_day(C)``).
    """
    p = settings.params
    reviews = review_days(settings, first_day, last_day)
    snaps: dict[int, State] = {}
    wanted = set(snapshot_days)
    if first_day in wanted:
        snaps[first_day] = state.copy()
    for t in range(first_day, last_day):
        if before_day is not None:
            before_day(t, state)
        rng = stream(settings.seed, TAG_PROCESS, block + 1, t + DAY_OFFSET)
        result = step(state, pop, t, rng, p, t in reviews)
        if on_day is not None:
            on_day(t, result, state)
        if t + 1 in wanted:
            snaps[t + 1] = state.copy()
        if progress is not None:
            progress(1)
    return snaps
