"""Random streams derived from (seed, purpose, ...) so any part of a run can be replayed."""

from __future__ import annotations

import numpy as np

TAG_POPULATION = 1
TAG_PROCESS = 2
TAG_EMIT = 3
TAG_TRUTH = 4
TAG_CAMPAIGN = 5
#: Added to day indices so that burn-in days (negative) give non-negative entropy.
DAY_OFFSET = 1_000_000


def stream(seed: int, tag: int, *keys: int) -> np.random.Generator:
    """A generator for ``(seed, tag, *keys)``; the same key always gives the same stream."""
    return np.random.Generator(
        np.random.SFC64(np.random.SeedSequence([int(seed), int(tag), *(int(k) for k in keys)]))
    )
