"""Past retention campaigns: selection by risk, the default action rules, a random control group,
and the true effect of each action on the treated customers' hidden state.

A campaign is sent at the start of its send day ``S`` (midnight, before that day's events):
it is selected from what the company has recorded before ``S`` (:class:`ObservedHistory`:
purchases, support contacts, program events; and cancellations),
and its treatment changes the hidden state of the treated customers (:func:`apply_actions`)
before day ``S`` is simulated. Control customers are left alone. See
:class:`churnlens.simulate.params.CampaignSettings` for the rules and effects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.data.schema import CONTACT_GROUPS
from churnlens.data.validate import category_from_codes
from churnlens.errors import InputError
from churnlens.simulate.params import ACTION_CHANNELS, ACTIONS, SimulationSettings
from churnlens.simulate.population import Population
from churnlens.simulate.process import State, StepResult
from churnlens.simulate.rng import TAG_CAMPAIGN, stream

#: Day index meaning "never happened".
NEVER_DAY = -(10**9)
#: Customers are active at S when they bought in the 365 days before it (DESIGN §3).
ACTIVE_WINDOW_DAYS = 365
#: ``contacts.group`` values by code: 0 control, 1 treatment.
GROUPS: tuple[str, ...] = tuple(sorted(CONTACT_GROUPS))


@dataclass(frozen=True)
class Campaign:
    """One executed campaign: the contacted customers (treatment and control) and their actions.

    Attributes
    ----------
    number : int
        1-based, in send order.
    campaign_id : str
        ``camp01``, ``camp02``, ...
    day : int
        Send day (days after the start of the span); contacts are stamped at its midnight.
    customers : ndarray of int64
        Contacted customers (0-based numbers, sorted): selected by risk and given an action.
    action : ndarray of int8
        Index into :data:`~churnlens.simulate.params.ACTIONS` of each customer's action.
    treated : ndarray of bool
        False for the control group (the action was assigned but not sent).
    eligible : ndarray of bool, shape (customers, actions)
        Which rules held for each customer (the action is the first that did).
    selected : int
        Customers selected by risk, contacted or not (no rule held for the rest).
    """

    number: int
    campaign_id: str
    day: int
    customers: np.ndarray
    action: np.ndarray
    treated: np.ndarray
    eligible: np.ndarray
    selected: int


def campaign_id(number: int) -> str:
    """The id of the ``number``-th campaign (1-based)."""
    return f"camp{number:02d}"


def campaign_days(settings: SimulationSettings) -> list[int]:
    """Send days of the campaigns: evenly spread from ``first_day`` to ``n_days - horizon_days``.

    Raises
    ------
    InputError
        When the span leaves no room for that many campaigns and their horizon.
    """
    cs = settings.campaigns
    n = int(cs.n_campaigns)
    if n == 0:
        return []
    first, last = int(cs.first_day), settings.n_days - int(cs.horizon_days)
    if last < first:
        raise InputError(
            f"{settings.months} months ({settings.n_days} days) leave no room for a campaign: the first is sent "
            f"{first} days after the start and each needs {cs.horizon_days} days of outcome before the end; "
            "simulate more months or use a shorter horizon"
        )
    if last - first + 1 < n:
        raise InputError(
            f"{n} campaigns do not fit between day {first} and day {last} (one per day at most); "
            "simulate more months or fewer campaigns"
        )
    if n == 1:
        return [last]
    return [int(np.floor(first + k * (last - first) / (n - 1) + 0.5)) for k in range(n)]


class ObservedHistory:
    """What the company has recorded of each customer so far (recorded days ``t >= 0`` only).

    Arrays of the whole population: first and last purchase day, number of purchase days,
    last support contact day and whether it was left unresolved, whether any contact was
    left unresolved, last complaint day, the points balance the program events record
    (earned minus redeemed: an opening balance from before the data is not recorded) and
    the last day of the customer's own program activity (enrolment, login, points earned or
    redeemed, offer viewed or completed). These are exactly what the snapshot features the
    default action rules read are built from (``support_open_issues``, ``points_balance``,
    ``days_since_last_program_activity``, ...), so the simulator's rules agree with
    :data:`churnlens.config.DEFAULT_ACTION_RULES` on its data.
    """

    def __init__(self, n: int) -> None:
        self.first_buy = np.full(n, NEVER_DAY, dtype=np.int64)
        self.last_buy = np.full(n, NEVER_DAY, dtype=np.int64)
        self.buy_days = np.zeros(n, dtype=np.int64)
        self.last_contact = np.full(n, NEVER_DAY, dtype=np.int64)
        self.last_unresolved = np.zeros(n, dtype=bool)
        self.unresolved = np.zeros(n, dtype=bool)
        self.last_complaint = np.full(n, NEVER_DAY, dtype=np.int64)
        self.points = np.zeros(n, dtype=np.float64)
        self.last_program = np.full(n, NEVER_DAY, dtype=np.int64)

    def recorder(self, offset: int) -> Callable[[int, StepResult, State], None]:
        """An ``on_day`` callback for the block whose first customer is ``offset``."""

        def on_day(t: int, r: StepResult, st: State) -> None:
            if t < 0:
                return
            b = r.buy_idx + offset
            self.first_buy[b] = np.where(self.first_buy[b] == NEVER_DAY, t, self.first_buy[b])
            self.last_buy[b] = t
            self.buy_days[b] += 1
            c = r.contact_idx + offset
            self.last_contact[c] = t
            self.last_unresolved[c] = ~r.resolved
            self.unresolved[c[~r.resolved]] = True
            self.last_complaint[c[r.complaint]] = t
            np.add.at(self.points, r.earned_idx + offset, r.earned_points.astype(np.float64))
            np.add.at(self.points, r.redeem_idx + offset, -r.redeem_points.astype(np.float64))
            for own in (r.newly_idx, r.login_idx, r.earned_idx, r.redeem_idx, r.viewed_idx, r.completed_idx):
                self.last_program[own + offset] = t

        return on_day

    def overdue_ratio(self, day: int, customers: np.ndarray) -> np.ndarray:
        """Days since the last purchase over the usual gap (the active window for one purchase)."""
        n = self.buy_days[customers]
        span = (self.last_buy[customers] - self.first_buy[customers]).astype(np.float64)
        gap = np.where(n >= 2, span / np.maximum(n - 1, 1), float(ACTIVE_WINDOW_DAYS))
        return (day - self.last_buy[customers]) / gap


def eligibility(
    day: int,
    customers: np.ndarray,
    seen: ObservedHistory,
    state: State,
    pop: Population,
    settings: SimulationSettings,
) -> np.ndarray:
    """The default rules at ``day`` for ``customers``: (customers, actions) booleans, ACTIONS order.

    The data conditions of :data:`churnlens.config.DEFAULT_ACTION_RULES` on what was recorded
    (their reason clause needs a model: campaigns here are model-free).
    """
    cs, p = settings.campaigns, settings.params
    service = (
        (seen.last_contact[customers] >= day - cs.support_window_days) & seen.unresolved[customers]
    ) | (seen.last_complaint[customers] >= day - cs.complaint_window_days)
    reminder = (
        pop.member[customers]
        & (seen.points[customers] >= cs.reminder_min_points)
        & ((day - seen.last_program[customers]) > p.lapse_days)
    )
    since = day - seen.last_buy[customers]
    win_back = (seen.overdue_ratio(day, customers) >= 1.0) | (since > cs.win_back_min_days)
    return np.column_stack([service, reminder, win_back])


def select_campaign(
    number: int, day: int, seen: ObservedHistory, state: State, pop: Population, settings: SimulationSettings
) -> Campaign:
    """Select, assign and randomise one campaign sent at the start of ``day``.

    Parameters
    ----------
    number : int
        1-based campaign number (selects the holdout's random stream).
    day : int
        Send day.
    seen : ObservedHistory
        Recorded history up to ``day - 1``.
    state, pop : State, Population
        The whole population at the start of ``day`` (only its observable parts are read:
        cancellations, points balance, last program activity, membership).
    settings : SimulationSettings

    Returns
    -------
    Campaign
    """
    cs = settings.campaigns
    active = np.flatnonzero((seen.last_buy >= day - ACTIVE_WINDOW_DAYS) & ~state.cancelled)
    # riskiest first: longest since the last purchase, then the most overdue, then by customer number
    order = np.lexsort((active, -seen.overdue_ratio(day, active), seen.last_buy[active]))
    chosen = np.sort(active[order[: int(cs.size)]])
    eligible = eligibility(day, chosen, seen, state, pop, settings)
    has = eligible.any(axis=1)
    customers, eligible = chosen[has], eligible[has]
    action = eligible.argmax(axis=1).astype(np.int8)
    treated = np.ones(customers.size, dtype=bool)
    rng = stream(settings.seed, TAG_CAMPAIGN, number)
    for a in range(len(ACTIONS)):  # control group stratified by action
        members = np.flatnonzero(action == a)
        k = int(np.floor(cs.holdout * members.size + 0.5))
        treated[members[rng.permutation(members.size)[:k]]] = False
    return Campaign(
        number=number,
        campaign_id=campaign_id(number),
        day=int(day),
        customers=customers.astype(np.int64),
        action=action,
        treated=treated,
        eligible=eligible,
        selected=int(chosen.size),
    )


def apply_actions(
    st: State,
    pop: Population,
    positions: np.ndarray,
    actions: np.ndarray,
    settings: SimulationSettings,
) -> None:
    """Apply each action's true effect to the customers at ``positions`` of ``st``, in place.

    Deterministic given the state (see :class:`~churnlens.simulate.params.CampaignSettings`),
    so a treated Monte Carlo future starts from exactly the state the recorded history had.
    ``positions`` must be distinct; ``pop`` is aligned with ``st``.
    """
    cs, p = settings.campaigns, settings.params
    f32 = np.float32
    for a, name in enumerate(ACTIONS):
        i = positions[actions == a]
        if not i.size:
            continue
        if name == "service_recovery":
            removed = st.d[i] * f32(1.0 - cs.recovery_dissatisfaction_kept)
            st.open_issue[i] = False
            st.d[i] -= removed
            st.x[i] += f32(cs.recovery_goodwill) + f32(cs.recovery_restore) * removed
        elif name == "points_reminder":
            unused = np.minimum(st.points[i].astype(np.float64) / p.redeem_unit, 1.0) * pop.member[i]
            st.x[i] += (cs.reminder_boost * unused).astype(f32)
        else:  # win_back
            e = (pop.mu[i] + st.x[i] - f32(p.engagement_dissatisfaction) * st.d[i]).astype(np.float64)
            response = 1.0 / (1.0 + np.exp(cs.win_back_slope * (e - cs.win_back_mid_engagement)))
            st.x[i] += (cs.win_back_boost * response).astype(f32)


class Treatments:
    """The treatments the executed campaigns sent, by day, to replay them exactly.

    Parameters
    ----------
    campaigns : sequence of Campaign
    exclude : int, optional
        A campaign number left out (the untreated branch of its own uplift).
    """

    def __init__(self, campaigns: Sequence[Campaign], exclude: int | None = None) -> None:
        self.by_day: dict[int, tuple[np.ndarray, np.ndarray]] = {
            c.day: (c.customers[c.treated], c.action[c.treated]) for c in campaigns if c.number != exclude
        }

    def __bool__(self) -> bool:
        return bool(self.by_day)

    def at(self, day: int, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``customers`` (global numbers, repeats allowed) treated on ``day``, and their actions."""
        found = self.by_day.get(day)
        if found is None or not customers.size:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
        treated, action = found
        pos = np.flatnonzero(np.isin(customers, treated))
        return pos, action[np.searchsorted(treated, customers[pos])]

    def hook(
        self, settings: SimulationSettings, pop: Population, customers: np.ndarray
    ) -> Callable[[int, State], None] | None:
        """A ``before_day`` callback applying the treatments to a state of ``customers`` (global numbers)."""
        if not self.by_day:
            return None

        def before_day(t: int, st: State) -> None:
            if t in self.by_day:
                pos, action = self.at(t, customers)
                apply_actions(st, pop, pos, action, settings)

        return before_day


#: Distinct channel names, and each action's code among them.
ACTION_CHANNELS_LEVELS: tuple[str, ...] = tuple(sorted(set(ACTION_CHANNELS)))


def _channel_codes(action: np.ndarray) -> np.ndarray:
    lookup = np.array([ACTION_CHANNELS_LEVELS.index(ch) for ch in ACTION_CHANNELS], dtype=np.int64)
    return lookup[action]


def contacts_frame(
    settings: SimulationSettings, campaigns: Sequence[Campaign], ids: pd.Series
) -> pd.DataFrame:
    """The ``contacts`` table of the campaigns, typed as validation types it.

    Parameters
    ----------
    settings : SimulationSettings
    campaigns : sequence of Campaign
    ids : Series
        Customer ids by customer number.

    Returns
    -------
    DataFrame
        customer_id, timestamp (the send date's midnight), campaign_id, action, group
        (treatment | control), channel, cost (0 for control rows: nothing was sent), sorted
        by (customer_id, timestamp).
    """
    cust = np.concatenate([c.customers for c in campaigns])
    day = np.concatenate([np.full(c.customers.size, c.day, dtype=np.int64) for c in campaigns])
    number = np.concatenate([np.full(c.customers.size, c.number - 1, dtype=np.int64) for c in campaigns])
    action = np.concatenate([c.action for c in campaigns]).astype(np.int64)
    treated = np.concatenate([c.treated for c in campaigns])
    order = np.lexsort((day, cust))
    cust, day, number, action, treated = cust[order], day[order], number[order], action[order], treated[order]
    start_us = settings.start_ts.value // 1000
    costs = np.asarray(settings.campaigns.costs)
    campaign_ids = [campaign_id(c.number) for c in campaigns]
    return pd.DataFrame(
        {
            "customer_id": ids.iloc[cust].reset_index(drop=True).astype("string"),
            "timestamp": pd.Series((start_us + day * 86_400_000_000).astype("datetime64[us]")),
            "campaign_id": pd.Series(category_from_codes(campaign_ids, number)),
            "action": pd.Series(category_from_codes(ACTIONS, action)),
            "group": pd.Series(category_from_codes(GROUPS, treated.astype(np.int64))),
            "channel": pd.Series(category_from_codes(ACTION_CHANNELS_LEVELS, _channel_codes(action))),
            "cost": np.where(treated, costs[action], 0.0),
        }
    )
