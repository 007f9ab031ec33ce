"""Static customer attributes: who signs up when, with which base engagement and habits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.simulate import params as P
from churnlens.simulate.params import SimulationSettings
from churnlens.simulate.rng import TAG_POPULATION, stream

#: Day index used for "never" (customers who signed up before the burn-in have no forced day).
NEVER = -(10**9)


@dataclass(frozen=True)
class Population:
    """Per-customer static arrays, all of length ``n_customers``, indexed by customer number.

    Day indices count days from ``settings.start`` (day 0); negative days are before it.
    """

    signup_day: np.ndarray  # int64
    signup_tod_us: np.ndarray  # int64, time of day of sign-up in microseconds
    start_day: np.ndarray  # int64, first simulated day: max(signup_day, -burn_in_days)
    forced_day: np.ndarray  # int64, day of the first (sign-up) purchase, NEVER if before burn-in
    mu: np.ndarray  # float32, base engagement
    log_rate: np.ndarray  # float32, log purchases per day at engagement 0
    basket_mu: np.ndarray  # float32, log median basket
    member: np.ndarray  # bool, loyalty-program member
    pref_channel: np.ndarray  # int8, preferred purchase channel
    country: np.ndarray  # int8 codes into params.COUNTRIES
    age_band: np.ndarray  # int8 codes into params.AGE_BANDS
    acquisition: np.ndarray  # int8 codes into params.ACQUISITION_CHANNELS

    @property
    def n(self) -> int:
        return int(self.mu.shape[0])

    def take(self, index: np.ndarray) -> Population:
        """Rows ``index`` of every array (used to branch futures for chosen customers)."""
        return Population(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def _choice(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.searchsorted(np.cumsum(w / w.sum()), rng.random(n), side="right").astype(np.int8)


def draw_population(settings: SimulationSettings) -> Population:
    """Draw the static attributes of every customer.

    Parameters
    ----------
    settings : SimulationSettings

    Returns
    -------
    Population
        Arrays of length ``settings.n_customers``; customer ``i`` gets id ``C{i+1:06d}``.
    """
    p = settings.params
    n = int(settings.n_customers)
    rng = stream(settings.seed, TAG_POPULATION)
    before = rng.random(n) < p.share_before_start
    history_days = int(round(p.history_years_before_start * 365))
    signup_day = np.where(
        before,
        rng.integers(-history_days, 0, n),
        rng.integers(0, settings.n_days, n),
    ).astype(np.int64)
    signup_tod_us = rng.integers(7 * 3600, 21 * 3600, n).astype(np.int64) * 1_000_000
    start_day = np.maximum(signup_day, -int(settings.burn_in_days))
    forced_day = np.where(signup_day >= -int(settings.burn_in_days), signup_day, NEVER)
    country = _choice(rng, P.COUNTRY_WEIGHTS, n)
    age_band = _choice(rng, P.AGE_WEIGHTS, n)
    acquisition = _choice(rng, P.ACQUISITION_WEIGHTS, n)
    shift = np.asarray(P.AGE_EFFECT)[age_band] + np.asarray(P.ACQUISITION_EFFECT)[acquisition]
    mu = shift + p.mu_sd * rng.standard_normal(n)
    log_rate = np.log(p.rate_median) + p.rate_sdlog * rng.standard_normal(n)
    basket_mu = np.log(p.basket_median) + p.basket_sdlog * rng.standard_normal(n)
    member = rng.random(n) < p.member_share
    pref_channel = _choice(rng, (0.5, 0.3, 0.2), n)
    return Population(
        signup_day=signup_day,
        signup_tod_us=signup_tod_us,
        start_day=start_day,
        forced_day=forced_day,
        mu=mu.astype(np.float32),
        log_rate=log_rate.astype(np.float32),
        basket_mu=basket_mu.astype(np.float32),
        member=member,
        pref_channel=pref_channel,
        country=country,
        age_band=age_band,
        acquisition=acquisition,
    )


def customer_ids(n: int) -> list[str]:
    """Customer ids ``C000001``, ``C000002``, ... (zero-padded to at least 6 digits)."""
    width = max(6, len(str(n)))
    return [f"C{i:0{width}d}" for i in range(1, n + 1)]


def customers_frame(settings: SimulationSettings, pop: Population) -> pd.DataFrame:
    """The ``customers`` table: id, sign-up time and static attributes (as strings).

    Parameters
    ----------
    settings : SimulationSettings
    pop : Population

    Returns
    -------
    pandas.DataFrame
        Columns customer_id, signup_at, country, age_band, acquisition_channel.
    """
    start_us = settings.start_ts.value // 1000
    signup_us = start_us + pop.signup_day * 86_400_000_000 + pop.signup_tod_us
    return pd.DataFrame(
        {
            "customer_id": pd.array(customer_ids(pop.n), dtype="string"),
            "signup_at": signup_us.astype("datetime64[us]"),
            "country": pd.array(np.asarray(P.COUNTRIES, dtype=object)[pop.country], dtype="string"),
            "age_band": pd.array(np.asarray(P.AGE_BANDS, dtype=object)[pop.age_band], dtype="string"),
            "acquisition_channel": pd.array(
                np.asarray(P.ACQUISITION_CHANNELS, dtype=object)[pop.acquisition], dtype="string"
            ),
        }
    )
