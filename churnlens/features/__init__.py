"""Point-in-time features, labels and the bilingual feature catalog (DESIGN §3–4)."""

from churnlens.features.catalog import (
    CATALOG_VERSION,
    FeatureSpec,
    catalog_frame,
    feature_catalog,
    render_reason,
    spec_for,
)
from churnlens.features.contacts import build_contacts_features
from churnlens.features.kernels import parse_cutoff
from churnlens.features.labels import (
    build_labels,
    build_training_set,
    label_mode,
    observed_until,
    training_cutoffs,
)
from churnlens.features.profile import build_profile_features
from churnlens.features.program import build_program_features
from churnlens.features.purchases import build_purchases_features
from churnlens.features.snapshot import (
    active_customers,
    build_snapshot,
    catalog_for,
    categorical_columns,
    snapshot_columns,
)
from churnlens.features.support import build_support_features

__all__ = [
    "CATALOG_VERSION",
    "FeatureSpec",
    "active_customers",
    "build_contacts_features",
    "build_labels",
    "build_profile_features",
    "build_program_features",
    "build_purchases_features",
    "build_snapshot",
    "build_support_features",
    "build_training_set",
    "catalog_for",
    "catalog_frame",
    "categorical_columns",
    "feature_catalog",
    "label_mode",
    "observed_until",
    "parse_cutoff",
    "render_reason",
    "snapshot_columns",
    "spec_for",
    "training_cutoffs",
]
