"""Uplift models: the expected effect of each retention action on churn, learnt from randomised contacts.

:mod:`churnlens.uplift.model` is the model (what training logs and serving loads),
:mod:`churnlens.uplift.store` reads and writes it as data, :mod:`churnlens.uplift.metrics`
measures a ranking of customers by uplift (Qini, AUUC, uplift by decile).
"""

from churnlens.uplift.model import (
    UPLIFT_COLUMN_PREFIX,
    UpliftMetadata,
    UpliftModel,
    uplift_column,
)

__all__ = ["UPLIFT_COLUMN_PREFIX", "UpliftMetadata", "UpliftModel", "uplift_column"]
