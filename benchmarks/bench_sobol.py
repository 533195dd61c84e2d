"""Benchmark: randomised QMC (``--rng sobol``) against the counter RNG on the monthly hashprice curve.

For each RNG, ``--repeats`` runs of the 36-month curve at ``--paths`` paths on different seeds
(warm: the kernel compiled first on a few paths). Per month: the relative stderr of the USD
hashprice forward (BTC control, as the curve reports it; under Sobol from the spread of the
scramble means), averaged over the repeats as a variance; the wall time per run; and the
efficiency gain (var_counter x t_counter) / (var_sobol x t_sobol) (> 1: Sobol reaches a given
stderr sooner). The same for the BTC/PH/day forward and, as a check of the Sobol points
themselves, for the BTC window average without control. Writes JSON with machine info.

    python benchmarks/bench_sobol.py                 # 100,000 paths, 36 months, 3 seeds
    python benchmarks/bench_sobol.py --quick         # smoke test with small sizes
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.bench_curve import loadavg, machine_info  # noqa: E402
from benchmarks.numpy_reference import monthly_windows  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.mc.simulation import Simulation  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_sobol.json"
QUANTITIES = {"hashprice_usd": "hashprice_usd_per_ph_day", "hashvalue_btc": "hashvalue_btc_per_ph_day",
              "btc_usd_uncontrolled": "btc_usd"}
BUCKETS = {"early": (0, 12), "middle": (12, 24), "late": (24, 36)}  # months [a, b) from the first


def _runs(market, model, windows, n_days, paths, seeds, threads, rng, scrambles) -> dict:
    """Warm runs on each seed: per-quantity mean relative variance of the monthly means, and times."""
    Simulation(market, model, n_days=n_days, n_paths=2_048, seed=0, threads=threads, rng=rng,
               scrambles=scrambles).run(windows)  # compile (or load) what this RNG needs
    times, rel_var = [], {k: [] for k in QUANTITIES}
    for seed in seeds:
        sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads, rng=rng,
                         scrambles=scrambles)
        t0 = time.perf_counter()
        run = sim.run(windows, daily=False)
        times.append(time.perf_counter() - t0)
        for key, name in QUANTITIES.items():
            rel_var[key].append((run.window_stderr(name) / run.window_mean(name)) ** 2)
    out = {"times_s": times, "median_s": statistics.median(times)}
    for key in QUANTITIES:
        v = np.mean(rel_var[key], axis=0)  # variance estimates averaged over the seeds
        out[key] = {"rel_stderr_per_month": np.sqrt(v).tolist(), "worst_rel_stderr": float(np.sqrt(v.max()))}
    return out


def _gains(prn: dict, qmc: dict, key: str, n_months: int) -> dict:
    vp = np.square(prn[key]["rel_stderr_per_month"])
    vq = np.square(qmc[key]["rel_stderr_per_month"])
    gain = vp * prn["median_s"] / (vq * qmc["median_s"])
    buckets = {}
    for name, (a, b) in BUCKETS.items():
        a, b = min(a, n_months), min(b, n_months)
        if b > a:  # geometric mean over the bucket's months
            buckets[name] = {"months": [a + 1, b], "gain": float(np.exp(np.log(gain[a:b]).mean()))}
    return {"per_month": gain.tolist(), "buckets": buckets,
            "variance_ratio_per_month": (vp / vq).tolist(),
            "worst_month_gain": float(vp.max() * prn["median_s"] / (vq.max() * qmc["median_s"]))}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seed", type=int, default=42, help="first seed; repeats use the next ones")
    ap.add_argument("--repeats", type=int, default=3, help="runs (seeds) per RNG")
    ap.add_argument("--scrambles", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.paths, args.months, args.repeats = min(args.paths, 8_192), min(args.months, 3), 2

    market, model = Market.default(), ModelParams.default()
    windows, labels, n_days = monthly_windows(market.asof, args.months)
    seeds = list(range(args.seed, args.seed + args.repeats))
    info = machine_info()
    prn = _runs(market, model, windows, n_days, args.paths, seeds, args.threads, "counter", args.scrambles)
    qmc = _runs(market, model, windows, n_days, args.paths, seeds, args.threads, "sobol", args.scrambles)
    info["loadavg_end"] = loadavg()
    doc = {
        "machine": info,
        "settings": {"paths": args.paths, "months": args.months, "days": n_days, "seeds": seeds,
                     "scrambles": args.scrambles, "threads": args.threads, "months_labels": list(labels),
                     "stderr": "relative stderr of each monthly forward (BTC control but for btc_usd_uncontrolled); "
                               "variances averaged over the seeds; sobol: from the spread of the scramble means"},
        "counter": prn,
        "sobol": qmc,
        "efficiency_gain": {key: _gains(prn, qmc, key, args.months) for key in QUANTITIES},
        "time_ratio_sobol_over_counter": qmc["median_s"] / prn["median_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    _print(doc)
    return doc


def _print(doc: dict) -> None:
    s = doc["settings"]
    print(f"{s['paths']:,} paths, {s['months']} months, seeds {s['seeds']}, {s['scrambles']} scrambles")
    print(f"time per run: counter {doc['counter']['median_s']:.2f} s, sobol {doc['sobol']['median_s']:.2f} s")
    for key in QUANTITIES:
        g = doc["efficiency_gain"][key]
        bk = ", ".join(f"{k} {v['gain']:.2f}" for k, v in g["buckets"].items())
        print(f"{key}: worst rel stderr counter {doc['counter'][key]['worst_rel_stderr']:.3%}, "
              f"sobol {doc['sobol'][key]['worst_rel_stderr']:.3%}; efficiency gain {bk}")


if __name__ == "__main__":
    main()
