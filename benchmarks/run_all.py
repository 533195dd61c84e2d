"""Every benchmark figure in one run, side by side, written to ``benchmarks/results/all.json``;
the README's benchmark table is rendered from that file (``benchmarks/readme_table.py``).

1. the 36-month curve at 100,000 paths against the NumPy and QuantLib references, cold and warm
   (``bench_curve.py``);
2. time to 0.1% accuracy: ``build_curve`` with a 0.001 tolerance, warm, against the NumPy
   reference's time for the 100k-path curve;
3. pseudo-random against randomised QMC (``--rng sobol``): variance, time and efficiency gain per
   month bucket (``bench_sobol.py``);
4. start-up: ``hashprice spot`` and ``hashprice --help`` as whole commands;
5. the 1,000-trade portfolio (``bench_portfolio.py``);
6. the hedge with the fleet's Greeks (``bench_hedge.py``), and the portfolio's risk (``bench_risk.py``);
7. scaling: the 100k-path curve in process, and on a local Dask cluster of 1 and 2 workers;
8. peak memory of a 36-month curve at 1,000,000 and 10,000,000 paths (fresh processes).

    python benchmarks/run_all.py               # everything (about 10 minutes on 2 cores)
    python benchmarks/run_all.py --quick       # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_curve, bench_hedge, bench_portfolio, bench_risk, bench_sobol  # noqa: E402
from benchmarks.bench_curve import machine_info  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.mc.tolerance import Tolerance  # noqa: E402
from engine.pricing.curve_builder import build_curve  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "all.json"


def time_to_accuracy(paths_max: int, months: int, seed: int, rel: float, repeats: int) -> dict:
    market, model = Market.default(), ModelParams.default()
    times, curve = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        curve = build_curve(market, model, months=months, paths=paths_max, seed=seed, tolerance=Tolerance(rel),
                            chunk_paths=16_384)
        times.append(time.perf_counter() - t0)
    worst = max(float((curve.hashprice_stderr / curve.hashprice_usd_per_ph_day).max()),
                float((curve.hashvalue_stderr / curve.hashvalue_btc_per_ph_day).max()))
    return {"tolerance": rel, "paths_used": curve.paths, "best_s": min(times), "times_s": times,
            "worst_rel_stderr": worst, "met": worst <= rel}


def startup(repeats: int) -> dict:
    out = {}
    for name, args in (("spot", ["spot", "--price-usd", "100000", "--difficulty", "1e14", "--subsidy-btc", "3.125"]),
                       ("help", ["--help"])):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "engine.app.cli", *args], check=True, capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
        out[name] = {"best_s": min(times), "median_s": statistics.median(times), "times_s": times}
    return out


def scaling(paths: int, months: int, seed: int, repeats: int) -> dict:
    from engine.mc.chunk_runner import DaskRunner, dask_client

    market, model = Market.default(), ModelParams.default()

    def run(runner):
        times, c = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            c = build_curve(market, model, months=months, paths=paths, seed=seed, runner=runner)
            times.append(time.perf_counter() - t0)
        return min(times), c.to_dict()

    local_s, local = run(None)
    out = {"paths": paths, "in_process_s": local_s}
    for workers in (1, 2):
        t0 = time.perf_counter()
        client = dask_client(workers=workers)
        start_s = time.perf_counter() - t0
        try:
            run(DaskRunner(client))  # warm the workers (each loads the compiled kernel)
            best, doc = run(DaskRunner(client))
        finally:
            client.close()
            client.cluster.close()
        out[f"workers_{workers}"] = {"best_s": best, "cluster_start_s": start_s, "identical_to_local": doc == local}
    return out


# VmHWM, not ru_maxrss: a forked child's ru_maxrss starts from its parent's high-water mark.
MEMORY_CHILD = """
import json, sys
from curves.market import Market
from engine.mc.model import ModelParams
from engine.pricing.curve_builder import build_curve
build_curve(Market.default(), ModelParams.default(), months=int(sys.argv[2]), paths=int(sys.argv[1]), seed=1)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"max_rss_mb": hwm_kb / 1024}))
"""


def peak_memory(paths: int, months: int) -> dict:
    """Peak resident memory of a fresh process that imports the engine and builds one curve
    (after a small run has filled the Numba cache, so that compiling is not measured)."""
    subprocess.run([sys.executable, "-c", MEMORY_CHILD, "1000", str(months)], check=True, capture_output=True, cwd=ROOT)
    cmd = [sys.executable, "-c", MEMORY_CHILD, str(paths), str(months)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"paths": paths, "months": months, "max_rss_mb": rec["max_rss_mb"], "wall_s": time.perf_counter() - t0}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--months", type=int, default=36)
    args = ap.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench_quick_"))

    def sub(name: str) -> list[str]:  # a smoke test writes its parts aside, not over the results
        return ["--quick", "--out", str(scratch / f"{name}.json")] if args.quick else []

    paths = 4_096 if args.quick else 100_000
    res = {"benchmark": "all", "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print("== curve against NumPy and QuantLib (cold and warm)", flush=True)
    res["curve"] = bench_curve.main(sub("curve"))
    print("== time to 0.1% accuracy", flush=True)
    res["time_to_accuracy"] = time_to_accuracy(400_000 if args.quick else 4_000_000, 3 if args.quick else args.months,
                                               42, 0.001, 1 if args.quick else 3)
    print("== counter RNG against Sobol", flush=True)
    res["sobol"] = bench_sobol.main(sub("sobol"))
    print("== start-up", flush=True)
    res["startup"] = startup(3 if args.quick else 7)
    print("== 1,000-trade portfolio", flush=True)
    res["portfolio"] = bench_portfolio.main(sub("portfolio"))
    print("== hedge with Greeks", flush=True)
    res["hedge"] = bench_hedge.main(sub("hedge"))
    print("== portfolio risk", flush=True)
    res["risk"] = bench_risk.main(sub("risk"))
    print("== scaling on Dask", flush=True)
    res["scaling"] = scaling(paths, 3 if args.quick else args.months, 42, 1 if args.quick else 2)
    print("== peak memory at 1M and 10M paths", flush=True)
    res["memory"] = [peak_memory(n, 3 if args.quick else args.months)
                     for n in ((20_000, 40_000) if args.quick else (1_000_000, 10_000_000))]
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    res["loadavg_end"] = list(os.getloadavg())
    out = scratch / "all.json" if args.quick and args.out == OUT else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"written {out}")
    return res


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
