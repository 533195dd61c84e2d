"""PNG charts (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from matplotlib.figure import Figure

from curves.hashprice_curve import HashpriceCurve
from engine.output import save_figure


def plot_curve(curve: HashpriceCurve, path) -> None:
    """Monthly forwards with a 95% Monte Carlo band over a fan of sample daily-index paths."""
    fig = Figure(figsize=(10, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    if curve.samples_hashprice_usd_per_ph_day is not None:
        for sample in curve.samples_hashprice_usd_per_ph_day:
            ax.plot(curve.daily_dates, sample, color="tab:gray", lw=0.5, alpha=0.35)
        ax.plot([], [], color="tab:gray", lw=0.5, label="sample paths (daily index)")
    starts = [p.start for p in curve.periods]
    edges = starts + [curve.periods[-1].end + dt.timedelta(days=1)]
    fwd = np.append(curve.hashprice_usd_per_ph_day, curve.hashprice_usd_per_ph_day[-1])
    se = np.append(curve.hashprice_stderr, curve.hashprice_stderr[-1])
    ax.step(edges, fwd, where="post", color="tab:blue", lw=2, label="monthly forward")
    ax.fill_between(edges, fwd - 1.96 * se, fwd + 1.96 * se, step="post", color="tab:blue",
                    alpha=0.3, label="95% Monte Carlo band")
    ax.plot(curve.daily_dates, curve.daily_hashprice_usd_per_ph_day, color="tab:orange", lw=1,
            label="expected daily index")
    ax.set_ylabel("hashprice (USD/PH/day)")
    ax.set_title(f"Hashprice forward curve as of {curve.asof} ({curve.paths:,} paths, seed {curve.seed})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    save_figure(fig, path)
