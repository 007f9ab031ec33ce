"""From a customer's top reason to a suggested retention action.

A reason belongs to a family of the feature catalog (purchases, program, support, profile);
each family has one suggested action per language, set in TOML ``[actions]``
(:class:`~churnlens.config.ActionSettings`, with shipped defaults). Retention action rules
(issue #15) will replace :func:`suggested_action`; nothing else looks actions up.
"""

from __future__ import annotations

from functools import lru_cache

from churnlens.config import REASON_FAMILIES, ActionSettings


@lru_cache(maxsize=4096)
def reason_family(feature: str | None) -> str | None:
    """The catalog family of a reason's feature (None when unknown or missing)."""
    from churnlens.features.catalog import spec_for

    if not feature:
        return None
    try:
        family = spec_for(str(feature)).family
    except KeyError:
        return None
    return family if family in REASON_FAMILIES else None


def suggested_action(family: str | None, lang: str, actions: ActionSettings) -> str | None:
    """The retention action suggested for a risk driven by ``family``, in ``lang`` (None: no action).

    Parameters
    ----------
    family : str or None
        Family of the customer's top reason (:func:`reason_family`).
    lang : {"en", "fr"}
    actions : ActionSettings
    """
    if family not in REASON_FAMILIES:
        return None
    return getattr(getattr(actions, lang), family)


__all__ = ["reason_family", "suggested_action"]
