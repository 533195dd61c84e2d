"""PNG charts (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from curves.hashprice_curve import HashpriceCurve
from engine.app.output import save_figure
from engine.backtest.backtest import ACCEPT_COVERAGE_90, TARGETS, UNITS, BacktestResult
from engine.backtest.forecast_scores import PIT_BINS

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


# ---- history ----------------------------------------------------------------------------------
def plot_history(frame: pd.DataFrame, ribbons: pd.DataFrame, path_png) -> Path:
    """Two panels: hashprice index (USD/PH/day, log scale) and hash ribbons (EH/s).

    Draws with the Agg canvas (no pyplot state) and writes the PNG atomically: a temporary
    file in the target directory, then a rename. Returns the path.
    """
    path = Path(path_png)
    fig = Figure(figsize=(11, 7), layout="constrained")
    ax_hp, ax_hr = fig.subplots(2, 1, sharex=True)
    ax_hp.plot(frame.index, frame["hashprice_usd_per_ph_day"], lw=1.0, label="hashprice index")
    ax_hp.set_yscale("log")
    ax_hp.set_ylabel("USD / PH / day")
    ax_hp.set_title("Hashprice (expected revenue at the day's difficulty)")
    ax_hp.grid(True, which="both", alpha=0.3)
    ax_hr.plot(ribbons.index, ribbons["hashrate_ehs"], lw=0.5, color="0.7", label="daily")
    short, long = ribbons.attrs.get("short_days", "short"), ribbons.attrs.get("long_days", "long")
    ax_hr.plot(ribbons.index, ribbons["sma_short_ehs"], lw=1.0, label=f"{short}d SMA")
    ax_hr.plot(ribbons.index, ribbons["sma_long_ehs"], lw=1.0, label=f"{long}d SMA")
    ax_hr.fill_between(ribbons.index, 0, 1, where=ribbons["capitulation"].to_numpy(),
                       transform=ax_hr.get_xaxis_transform(), color="red", alpha=0.15,
                       label="capitulation")
    ax_hr.set_yscale("log")
    ax_hr.set_ylabel("hashrate EH/s")
    ax_hr.set_title("Hash ribbons")
    ax_hr.grid(True, which="both", alpha=0.3)
    ax_hr.legend(loc="upper left")
    save_figure(fig, path)
    return path


# ---- backtest ---------------------------------------------------------------------------------
def plot_backtest(result: BacktestResult, path) -> None:
    """PIT histograms (model vs naive) per horizon and unit, interval coverage, CRPS ratios,
    and the 1-month USD fan of forecasts against the realised index."""
    s = result.summary
    horizons = sorted(s["horizon_months"].unique())
    nh = len(horizons)
    fig = Figure(figsize=(4.2 * max(nh, 3), 15), layout="constrained")
    grid = fig.add_gridspec(5, max(nh, 3))
    edges = np.linspace(0, 1, PIT_BINS + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    for row, c in enumerate(TARGETS):
        for k, h in enumerate(horizons):
            ax = fig.add_subplot(grid[row, k])
            r = s[(s["horizon_months"] == h) & (s["target"] == c)].iloc[0]
            n = r["origins"]
            ax.bar(centers - 0.022, np.array(r["model_pit_histogram"]) / n, width=0.044,
                   label="model", color="tab:blue")
            ax.bar(centers + 0.022, np.array(r["naive_pit_histogram"]) / n, width=0.044,
                   label="naive RW", color="tab:gray")
            ax.axhline(1.0 / PIT_BINS, color="k", lw=0.8, ls="--")
            ax.set_title(f"PIT, {h}m ahead, {UNITS[c]} (n={n})", fontsize=10)
            ax.set_xlim(0, 1)
            if k == 0:
                ax.set_ylabel("fraction of origins")
                ax.legend(fontsize=8)
    labels = [f"{h}m {c.upper()}" for c in TARGETS for h in horizons]
    pick = [s[(s["horizon_months"] == h) & (s["target"] == c)].iloc[0]
            for c in TARGETS for h in horizons]
    x = np.arange(len(labels))
    ax = fig.add_subplot(grid[3, 0])
    for off, key, col in ((-0.3, "model_coverage_90", "tab:blue"), (-0.1, "naive_coverage_90", "tab:gray"),
                          (0.1, "model_coverage_50", "tab:cyan"), (0.3, "naive_coverage_50", "silver")):
        ax.bar(x + off, [p[key] for p in pick], width=0.2, color=col,
               label=key.replace("_coverage_", " ") + "%")
    ax.axhline(0.9, color="k", lw=0.8, ls="--")
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.axhspan(*ACCEPT_COVERAGE_90[1], color="green", alpha=0.08)  # the 1-6 month bar
    ax.set_xticks(x, labels, rotation=45, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("interval coverage", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax = fig.add_subplot(grid[3, 1])
    ax.bar(x - 0.2, [p["crps_ratio"] for p in pick], width=0.4, label="mean CRPS ratio")
    ax.bar(x + 0.2, [p["crps_rel_ratio"] for p in pick], width=0.4, label="relative CRPS ratio")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, labels, rotation=45, fontsize=8)
    ax.set_title("CRPS model / naive (< 1: model better)", fontsize=10)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[3, 2])
    ax.axis("off")
    text = [f"{result.settings['origins']} origins {result.settings['first_origin']}.."
            f"{result.settings['last_origin']}", f"{result.settings['paths']:,} paths, seed "
            f"{result.settings['seed']}", f"run time {result.seconds:.1f} s", ""]
    for p, lab in zip(pick, labels):
        text.append(f"{lab}: cov90 {p['model_coverage_90']:.0%} / {p['naive_coverage_90']:.0%}, "
                    f"CRPS x{p['crps_ratio']:.2f}")
    ax.text(0, 1, "\n".join(text), va="top", family="monospace", fontsize=8)
    ax = fig.add_subplot(grid[4, :])
    h0 = horizons[0]
    g = result.records[(result.records["horizon_months"] == h0)
                       & (result.records["target"] == "usd")].sort_values("origin")
    mid = pd.to_datetime(g["target_start"]) + (pd.to_datetime(g["target_end"])
                                               - pd.to_datetime(g["target_start"])) / 2
    ax.fill_between(mid, g["model_q05"], g["model_q95"], color="tab:blue", alpha=0.2,
                    label="model 90%", step="mid")
    ax.fill_between(mid, g["model_q25"], g["model_q75"], color="tab:blue", alpha=0.4,
                    label="model 50%", step="mid")
    ax.plot(mid, g["naive_q05"], color="tab:gray", lw=0.8, ls="--", label="naive 90%")
    ax.plot(mid, g["naive_q95"], color="tab:gray", lw=0.8, ls="--")
    ax.plot(mid, g["realised"], "o-", color="tab:red", ms=3, lw=1, label="realised")
    ax.set_yscale("log")
    ax.set_ylabel("USD/PH/day")
    ax.set_title(f"{h0}-month-ahead forecasts of the 30-day average hashprice vs realised",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=5)
    save_figure(fig, path)


def _weighted(x) -> tuple[np.ndarray, np.ndarray]:
    """(values in thousand USD, weights) of per-path values or of a histogram's (edges, counts)."""
    if isinstance(x, tuple):
        edges, counts = x
        return 0.5 * (edges[:-1] + edges[1:]) / 1e3, counts.astype(float)
    return np.asarray(x) / 1e3, np.ones(np.size(x))


def _wquantile(v: np.ndarray, w: np.ndarray, p: float) -> float:
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return float(v[order][min(np.searchsorted(cum, p * cum[-1]), v.size - 1)])


def plot_hedge_pnl(horizon_pnl_usd: dict, path, title: str = "") -> None:
    """Histograms of the horizon's net cash flow per path (per-path values, or a histogram's
    (edges, counts)): unhedged against each hedge, with the 5% quantile (the 95% VaR's level) marked."""
    hedges = [h for h in horizon_pnl_usd if h != "unhedged"]
    data = {h: _weighted(x) for h, x in horizon_pnl_usd.items()}
    allv = np.concatenate([v for v, _ in data.values()])
    allw = np.concatenate([w for _, w in data.values()])
    lo, hi = _wquantile(allv, allw, 0.001), _wquantile(allv, allw, 0.999)
    bins = np.linspace(lo, hi, 81)
    fig = Figure(figsize=(4.2 * max(len(hedges), 1), 3.6), layout="constrained")
    base, bw = data["unhedged"]
    for k, h in enumerate(hedges or ["unhedged"]):
        ax = fig.add_subplot(1, max(len(hedges), 1), k + 1)
        ax.hist(base, bins=bins, weights=bw, color="tab:gray", alpha=0.5, label="unhedged", density=True)
        ax.axvline(_wquantile(base, bw, 0.05), color="tab:gray", ls="--", lw=0.9)
        if h != "unhedged":
            x, w = data[h]
            ax.hist(x, bins=bins, weights=w, color="tab:blue", alpha=0.5, label=h.replace("_", " "), density=True)
            ax.axvline(_wquantile(x, w, 0.05), color="tab:blue", ls="--", lw=0.9)
        ax.set_xlabel("net cash flow over the horizon (thousand USD)")
        ax.set_yticks([])
        ax.legend(fontsize=8)
        ax.set_title(h.replace("_", " "), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
