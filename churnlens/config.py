"""Typed settings for every stage, with defaults and one place that validates them.

Settings are frozen dataclasses. :func:`load_config` reads a TOML file whose sections
match the dataclasses (``[features]``, ``[labels]``, ``[training]``, ``[serving]``,
``[columns.<table>]``); anything not given keeps its default.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class FeatureConfig:
    """How snapshots are built.

    Parameters
    ----------
    windows : tuple of int
        Trailing windows in days for windowed aggregates.
    active_window_days : int
        A customer is active at cutoff C when they bought in ``[C - active_window_days, C)``.
    downgrade_window_days : int
        A tier downgrade within this many days before C counts as "recent".
    btyd_params : tuple of 4 float, optional
        BG/NBD population parameters (r, alpha, a, b; days). None (training): fitted at each
        cutoff on every customer's history before it. A trained model records the ones
        fitted at the end of its training data, so scoring a few customers (the API) gives
        the same features as scoring the whole base. Four NaN: the fit failed, the
        features are NaN.
    """

    windows: tuple[int, ...] = (30, 90, 365)
    active_window_days: int = 365
    downgrade_window_days: int = 90
    btyd_params: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if not self.windows or any(int(w) <= 0 for w in self.windows):
            raise ValueError(f"features.windows must be positive day counts, got {self.windows!r}")
        object.__setattr__(self, "windows", tuple(sorted(int(w) for w in self.windows)))
        if self.active_window_days <= 0:
            raise ValueError("features.active_window_days must be positive")
        if self.btyd_params is not None:
            params = tuple(float(v) for v in self.btyd_params)
            unfitted = all(v != v for v in params)  # NaN: the fit failed
            if len(params) != 4 or not (unfitted or all(v > 0 for v in params)):
                raise ValueError("features.btyd_params must be four positive numbers (r, alpha, a, b)")
            object.__setattr__(self, "btyd_params", params)


@dataclass(frozen=True)
class LabelConfig:
    """How churn is labelled.

    Parameters
    ----------
    horizon_days : int
        Length of the future window ``[C, C + H)``.
    mode : {"auto", "non_contractual", "contractual"}
        ``auto`` picks contractual when a cancellations table exists.
    """

    horizon_days: int = 90
    mode: Literal["auto", "non_contractual", "contractual"] = "auto"

    def __post_init__(self) -> None:
        if self.horizon_days <= 0:
            raise ValueError("labels.horizon_days must be positive")
        if self.mode not in ("auto", "non_contractual", "contractual"):
            raise ValueError(f"labels.mode must be auto, non_contractual or contractual, got {self.mode!r}")


@dataclass(frozen=True)
class ChurnConfig:
    """All settings of a run; sections are filled by later stages."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    #: user column name -> contract column name, per table
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    #: free-form sections owned by later stages (training, serving)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for logging."""
        return asdict(self)


_SECTIONS = {"features": FeatureConfig, "labels": LabelConfig}


def _build(cls: type, section: str, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"config section [{section}] has unknown keys: {sorted(unknown)}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


def config_from_dict(raw: dict[str, Any]) -> ChurnConfig:
    """Build a :class:`ChurnConfig` from a nested dict (a parsed TOML file).

    Parameters
    ----------
    raw : dict
        Sections ``features``, ``labels``, ``columns`` and any others (kept in ``extra``).

    Returns
    -------
    ChurnConfig
    """
    kwargs: dict[str, Any] = {}
    extra: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section in _SECTIONS:
            kwargs[section] = _build(_SECTIONS[section], section, values)
        elif section == "columns":
            for table, mapping in values.items():
                if not isinstance(mapping, dict):
                    raise ValueError(f"[columns.{table}] must be a table of user_name = \"contract_name\"")
            kwargs["columns"] = {t: dict(m) for t, m in values.items()}
        else:
            extra[section] = dict(values)
    return ChurnConfig(**kwargs, extra=extra)


def load_config(path: str | Path | None) -> ChurnConfig:
    """Read a TOML config file; None gives the defaults.

    Parameters
    ----------
    path : str or Path or None

    Returns
    -------
    ChurnConfig
    """
    if path is None:
        return ChurnConfig()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc
    return config_from_dict(raw)
