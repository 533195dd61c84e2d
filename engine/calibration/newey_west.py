"""Newey-West (Bartlett kernel) standard error of a sample mean, for autocorrelated series.

>>> import numpy as np
>>> mean, se = mean_and_stderr(np.array([1.0, 2.0, 3.0, 4.0]), lags=0)
>>> mean, round(se, 4)
(2.5, 0.559)
"""

import math

import numpy as np


def mean_and_stderr(z: np.ndarray, lags: int) -> tuple[float, float]:
    """Mean of ``z`` and its standard error with a Newey-West long-run variance (``lags`` lags)."""
    z = np.asarray(z, dtype=float)
    n = len(z)
    m = float(z.mean())
    d = z - m
    lrv = float(d @ d) / n
    for lag in range(1, min(lags, n - 1) + 1):
        lrv += 2.0 * (1.0 - lag / (lags + 1.0)) * float(d[lag:] @ d[:-lag]) / n
    return m, math.sqrt(max(lrv, 0.0) / n)
