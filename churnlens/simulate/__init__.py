"""A loyalty-program simulator with exact ground truth (hidden state → churn probabilities)."""

from churnlens.simulate.params import ProcessParams, SimulationSettings
from churnlens.simulate.simulation import Simulation, simulate, simulate_truth_table, simulation_steps

__all__ = [
    "ProcessParams",
    "Simulation",
    "SimulationSettings",
    "simulate",
    "simulate_truth_table",
    "simulation_steps",
]
