"""Cash flow at risk of per-path values: mean, standard deviation, VaR and CVaR, the chance of a
loss, with standard errors by batch means.

VaR_a = mean - the a-quantile of the cash flow, CVaR_a = mean - the mean of the cash flows at or
below that quantile (both positive when the tail is a loss; undiscounted). Quantiles are the
sample's own order statistics (``numpy.quantile``, method ``inverted_cdf``): the same per-path
values give the same figures however the paths were simulated in chunks. The standard error of
each figure comes from ``N_BATCHES`` consecutive batches of paths (whole antithetic pairs):
sd of the batch figures / sqrt(batches).

>>> rng = np.random.default_rng(1)
>>> s = cash_flow_at_risk(rng.normal(100.0, 10.0, 400_000))
>>> round(s["var_95_usd"], 1), round(s["cvar_95_usd"], 1)  # 16.45 and 20.63 for N(100, 10)
(16.4, 20.6)
"""

from __future__ import annotations

import numpy as np

LEVELS = (0.95, 0.99)
N_BATCHES = 20


def _figures(x: np.ndarray) -> dict[str, float]:
    mean = float(x.mean())
    out = {"mean_usd": mean, "std_usd": float(x.std(ddof=1)) if x.size > 1 else 0.0}
    for level in LEVELS:
        tail = int(round(100 * level))
        q = float(np.quantile(x, 1.0 - level, method="inverted_cdf"))
        out[f"var_{tail}_usd"] = mean - q
        out[f"cvar_{tail}_usd"] = mean - float(x[x <= q].mean())
    out["prob_negative"] = float((x < 0).mean())
    return out


def batch_edges(n: int) -> list[int]:
    """First path of each of the ``N_BATCHES`` batches (whole antithetic pairs), then ``n``."""
    pairs = n // 2
    edges = [2 * (pairs * b // N_BATCHES) for b in range(N_BATCHES + 1)]
    edges[-1] = n
    return edges


def _batches(n: int) -> list[slice]:
    edges = batch_edges(n)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def cash_flow_at_risk(x: np.ndarray) -> dict[str, float]:
    """Figures of per-path cash flows ``x`` (paths in pair order), each with ``<name>_stderr``."""
    x = np.asarray(x, dtype=float)
    out = _figures(x)
    per_batch = [_figures(x[s]) for s in _batches(x.size)]
    for key in list(out):
        vals = np.array([b[key] for b in per_batch])
        out[f"{key}_stderr"] = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")
    return out


def effectiveness(hedged: np.ndarray, unhedged: np.ndarray) -> tuple[float, float]:
    """1 - Var(hedged) / Var(unhedged), and its batch-means stderr."""
    def one(h, u):
        vu = u.var()
        return 1.0 - h.var() / vu if vu > 0 else float("nan")

    value = one(hedged, unhedged)
    vals = np.array([one(hedged[s], unhedged[s]) for s in _batches(hedged.size)])
    return value, float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")


def batch_stderr(stat, *arrays: np.ndarray) -> float:
    """Batch-means stderr of ``stat(*arrays)`` over consecutive path batches (axis 0)."""
    vals = np.array([stat(*(a[s] for a in arrays)) for s in _batches(arrays[0].shape[0])])
    return float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")
