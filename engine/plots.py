"""PNG charts (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from matplotlib.figure import Figure

from curves.hashprice_curve import HashpriceCurve
from engine.output import save_figure

DIFFICULTY_UNIT = 1e12  # difficulty is shown in T
SURE_REACH = 0.99  # retargets reached by fewer paths have means conditional on an early arrival


def _bands(ax, bands, name: str, scale: float, color: str, mean=None, mean_label="mean") -> None:
    """5-95% and 25-75% bands, the median, and the mean, of a quantity on the band days."""
    x = list(bands["date"])
    ax.fill_between(x, bands[f"{name}_p05"] / scale, bands[f"{name}_p95"] / scale, color=color, alpha=0.15,
                    lw=0, label="5-95% of paths")
    ax.fill_between(x, bands[f"{name}_p25"] / scale, bands[f"{name}_p75"] / scale, color=color, alpha=0.3,
                    lw=0, label="25-75% of paths")
    ax.plot(x, bands[f"{name}_p50"] / scale, color=color, lw=1.2, ls="--", label="median")
    if mean is not None:
        ax.plot(mean[0], np.asarray(mean[1]) / scale, color="black", lw=1.0, label=mean_label)


def plot_curve(curve: HashpriceCurve, path) -> None:
    """Two panels: the daily index (bands across paths, median, expected index, monthly forwards
    with their 95% Monte Carlo band) and difficulty (bands, median, mean).

    Without daily bands (a curve built with ``bands=False``), the sample paths stand in for them.
    """
    fig = Figure(figsize=(11, 8.5))
    ax, ax_d = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    bands = curve.daily_bands
    if bands is None and curve.samples_hashprice_usd_per_ph_day is not None:
        for sample in curve.samples_hashprice_usd_per_ph_day:
            ax.plot(curve.daily_dates, sample, color="tab:gray", lw=0.4, alpha=0.5)
        ax.plot([], [], color="tab:gray", lw=0.4, label="sample paths")
    if bands is not None:
        _bands(ax, bands, "hashprice_usd_per_ph_day", 1.0, "tab:blue")
    ax.plot(curve.daily_dates, curve.daily_hashprice_usd_per_ph_day, color="black", lw=1.0,
            label="expected daily index")
    starts = [p.start for p in curve.periods]
    edges = starts + [curve.periods[-1].end + dt.timedelta(days=1)]
    fwd = np.append(curve.hashprice_usd_per_ph_day, curve.hashprice_usd_per_ph_day[-1])
    se = np.append(curve.hashprice_stderr, curve.hashprice_stderr[-1])
    ax.step(edges, fwd, where="post", color="tab:red", lw=1.8, label="monthly forward")
    ax.fill_between(edges, fwd - 1.96 * se, fwd + 1.96 * se, step="post", color="tab:red", alpha=0.35,
                    label="forward 95% Monte Carlo band")
    ax.set_ylabel("hashprice index (USD/PH/day)")
    ax.set_title(f"Hashprice forward curve and daily index distribution as of {curve.asof} "
                 f"({curve.paths:,} paths, seed {curve.seed})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=2)

    if bands is not None:
        _bands(ax_d, bands, "difficulty", DIFFICULTY_UNIT, "tab:green",
               mean=(bands["date"], bands["difficulty_mean"]))
    if len(curve.epochs):
        e = curve.epochs
        sure = e["reach_probability"] >= SURE_REACH
        for mask, face, label in ((sure, "tab:olive", "retarget: mean on its expected date"),
                                  (~sure, "none", f"same, reached by < {SURE_REACH:.0%} of paths (conditional)")):
            if mask.any():
                ax_d.plot(list(e.loc[mask, "expected_start"]), e.loc[mask, "difficulty_mean"] / DIFFICULTY_UNIT,
                          "o", ms=3, color="tab:olive", mfc=face, label=label)
    ax_d.set_ylabel("difficulty (T = 1e12)")
    ax_d.grid(alpha=0.3)
    ax_d.legend(loc="upper left", fontsize=8, ncol=2)
    fig.align_ylabels([ax, ax_d])
    save_figure(fig, path)
