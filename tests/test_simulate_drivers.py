"""The simulator's true churn-hazard decomposition by driver, and the driver -> feature map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.features import build_snapshot
from churnlens.features.catalog import spec_for
from churnlens.simulate import (
    DRIVER_FEATURES,
    DRIVERS,
    driver_features,
    simulate,
    simulate_driver_table,
    simulate_truth_table,
)
from churnlens.simulate.process import decay_state, engagement, log_hazard, program_lapse
from churnlens.simulate.truth import states_at

CUTOFFS = ["2023-10-01", "2023-11-15"]


@pytest.fixture(scope="module")
def sim():
    return simulate(6_000, months=12, seed=11)


@pytest.fixture(scope="module")
def drivers(sim):
    return simulate_driver_table(sim, CUTOFFS)


def test_parts_add_up_to_the_log_hazard(drivers):
    parts = drivers[["baseline", *DRIVERS]].sum(axis=1)
    np.testing.assert_allclose(parts, drivers["log_hazard"], rtol=0, atol=1e-12)
    centred = drivers[[f"{d}_centred" for d in DRIVERS]].sum(axis=1)
    np.testing.assert_allclose(
        drivers["reference_log_hazard"] + centred, drivers["log_hazard"], rtol=0, atol=1e-9
    )
    for cutoff, rows in drivers.groupby("cutoff"):
        alive = rows[~rows["churned"]]
        for d in DRIVERS:  # centred on the customers alive at the cutoff
            assert abs(alive[f"{d}_centred"].mean()) < 1e-9, (cutoff, d)
        assert rows["reference_log_hazard"].nunique() == 1


def test_total_is_the_hazard_the_process_uses(sim, drivers):
    """Every term of the process' log-hazard is accounted for: recompute it with the step's own function."""
    p = sim.settings.params
    for cutoff in CUTOFFS:
        day = (pd.Timestamp(cutoff) - sim.settings.start_ts).days
        rows = drivers[(drivers["cutoff"] == cutoff) & ~drivers["churned"]]
        index = sim.customer_numbers(rows["customer_id"])
        st = states_at(sim, [day])[day].take(index)
        pop = sim.population.take(index)
        decay_state(st, p)
        expected = log_hazard(
            engagement(pop, st, p),
            st.d,
            program_lapse(pop, st, day, p),
            st.down,
            st.open_issue,
            st.newness,
            p,
        )
        np.testing.assert_allclose(rows["log_hazard"], expected, rtol=0, atol=2e-5)


def test_churned_customers_are_decomposed_on_their_churn_day(sim, drivers):
    truth = simulate_truth_table(sim, CUTOFFS, 30, draws=4)
    assert drivers[["customer_id", "cutoff"]].equals(truth[["customer_id", "cutoff"]])
    churned = drivers["churned"].to_numpy()
    assert churned.any() and not churned.all()
    # silently churned customers are certain not to buy; alive ones are not
    assert (truth.loc[churned, "p_no_purchase"] == 1).all()
    assert (drivers.loc[churned, "hazard_day"] < drivers.loc[churned, "cutoff"]).all()
    assert (drivers.loc[~churned, "hazard_day"] == drivers.loc[~churned, "cutoff"]).all()
    # the day they churned, their hazard was far above the reference
    gap = drivers["log_hazard"] - drivers["reference_log_hazard"]
    assert gap[churned].mean() > gap[~churned].mean() + 0.5


def test_expected_churn_matches_the_churn_that_happens(sim):
    """Σ exp(log_hazard) over the customers alive at C is the expected number who churn on day C."""
    start = pd.Timestamp("2023-09-01")
    cutoffs = [start + pd.Timedelta(days=k) for k in range(40)]
    table = simulate_driver_table(sim, cutoffs)
    days = [(c - sim.settings.start_ts).days for c in cutoffs]
    states = states_at(sim, [*days, days[-1] + 1])
    expected = observed = 0.0
    for cutoff, day in zip(cutoffs, days, strict=True):
        rows = table[(table["cutoff"] == cutoff) & ~table["churned"]]
        expected += float(np.exp(rows["log_hazard"]).sum())
        index = sim.customer_numbers(rows["customer_id"])
        observed += float((~states[day + 1].alive[index]).sum())
    assert expected > 100
    assert abs(observed - expected) < 4 * np.sqrt(expected), (observed, expected)


def test_largest_driver(drivers):
    centred = drivers[[f"{d}_centred" for d in DRIVERS]].to_numpy()
    positive = centred.max(axis=1) > 0
    assert drivers["largest_driver"].isna().to_numpy().tolist() == (~positive).tolist()
    top = np.asarray(DRIVERS)[centred.argmax(axis=1)]
    assert (drivers["largest_driver"].to_numpy(dtype=object)[positive] == top[positive]).all()
    # several drivers come out on top somewhere
    assert drivers["largest_driver"].nunique() >= 4


def test_driver_table_is_deterministic(sim, drivers):
    again = simulate_driver_table(simulate(6_000, months=12, seed=11), CUTOFFS)
    pd.testing.assert_frame_equal(again, drivers, check_exact=True)


def test_every_driver_maps_to_catalog_features(sim):
    names = {d for d in DRIVER_FEATURES}
    assert names == set(DRIVERS)
    for driver, observed in DRIVER_FEATURES.items():
        assert observed.direct, driver
        for template in observed.direct + observed.indirect:
            name = (
                template.replace("{w}", "30").replace("{d}", "90").replace("{s}", "90").replace("{l}", "365")
            )
            assert spec_for(name).name == name, (driver, template)
    columns = list(build_snapshot(sim.tables, "2023-10-01").columns)
    direct = driver_features(columns)
    for driver in DRIVERS:
        assert direct[driver], f"no feature of the simulated snapshot observes {driver}"
    assert direct["downgrade"] == ["tier_downgraded_90d"]
    assert direct["program_lapse"] == ["days_since_last_program_activity"]
    wider = driver_features(columns, indirect=True)
    assert all(set(direct[d]) <= set(wider[d]) for d in DRIVERS)
    assert "logins_30d" in wider["program_lapse"] and "logins_30d" not in direct["program_lapse"]
