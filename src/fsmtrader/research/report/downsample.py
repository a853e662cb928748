"""Plot series cut to a few thousand points without losing their extremes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MAX_POINTS = 2_000


def minmax_indices(
    y: npt.NDArray[np.float64], max_points: int = MAX_POINTS
) -> npt.NDArray[np.intp]:
    """Indices of at most ``max_points`` points of ``y``, in order: the first, the last,
    and each bucket's minimum and maximum, so every spike and every drawdown stays."""
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, (max_points - 2) // 2)
    size = -(-n // buckets)
    padded = np.concatenate((y, np.full(size * buckets - n, y[-1])))
    grid = padded.reshape(buckets, size)
    base = np.arange(buckets) * size
    picks = np.concatenate(
        (base + np.argmin(grid, axis=1), base + np.argmax(grid, axis=1), [0, n - 1])
    )
    return np.unique(np.clip(picks, 0, n - 1))
