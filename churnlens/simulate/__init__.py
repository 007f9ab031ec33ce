"""A loyalty-program simulator with exact ground truth (hidden state → churn probabilities).

Beside the event tables it gives the true churn probabilities (:func:`simulate_truth_table`),
the true churn-hazard decomposition by driver (:func:`simulate_driver_table`, with
:data:`DRIVER_FEATURES` mapping drivers to the features that observe them) and, with
``campaigns``, past retention campaigns with their true uplift (:func:`simulate_uplift_table`).
"""

from churnlens.simulate.drivers import DRIVER_FEATURES, DRIVERS, DriverFeatures, driver_features
from churnlens.simulate.params import ACTIONS, CampaignSettings, ProcessParams, SimulationSettings
from churnlens.simulate.simulation import (
    Simulation,
    simulate,
    simulate_driver_table,
    simulate_truth_table,
    simulate_uplift_table,
    simulation_steps,
)

__all__ = [
    "ACTIONS",
    "DRIVERS",
    "DRIVER_FEATURES",
    "CampaignSettings",
    "DriverFeatures",
    "ProcessParams",
    "Simulation",
    "SimulationSettings",
    "driver_features",
    "simulate",
    "simulate_driver_table",
    "simulate_truth_table",
    "simulate_uplift_table",
    "simulation_steps",
]
