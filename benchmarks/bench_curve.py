"""Benchmark: the 36-month hashprice forward curve (calendar-month averages, USD/PH/day).

Times the fused Numba engine (``engine.mc.simulation.Simulation``) cold (a fresh process with an
empty Numba cache, so the figure includes compilation; then again with that cache filled; and
``hashprice curve --paths 2000`` end to end the same way) and
warm (best and median of N runs) at 1 and 2 threads; then the plain NumPy reference of the same
model (``benchmarks/numpy_reference.py``, single-threaded) and QuantLib-Python's path generator on
the BTC factor alone (``benchmarks/quantlib_reference.py``, fewer paths, scaled). Prints a table
and writes JSON (machine info, settings, timings, both curves).

    python benchmarks/bench_curve.py                 # 100,000 paths, 36 months
    python benchmarks/bench_curve.py --quick         # smoke test with small sizes

Throughput is in path-days per second: paths x simulated days / seconds. The engine and the NumPy
reference simulate BTC, hashrate and fees with retargets and halvings; QuantLib only BTC.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import QuantLib as ql  # noqa: E402

from benchmarks.numpy_reference import monthly_windows, simulate_numpy  # noqa: E402
from benchmarks.quantlib_reference import simulate_quantlib, time_generator  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.mc.simulation import Simulation  # noqa: E402

HP = "hashprice_usd_per_ph_day"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_curve.json"


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews the timings."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def machine_info() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "quantlib": ql.__version__,
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": loadavg(),
    }


def _cold_child(paths: int, months: int, seed: int, threads: int) -> None:
    """Runs in a fresh process: first call (compile or cache load) and a second, warm call."""
    t0 = time.perf_counter()
    market, model = Market.default(), ModelParams.default()
    windows, _, n_days = monthly_windows(market.asof, months)
    sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads)
    t1 = time.perf_counter()
    sim.run(windows=windows)
    t2 = time.perf_counter()
    sim.run(windows=windows)
    t3 = time.perf_counter()
    print(json.dumps({"setup_s": t1 - t0, "first_run_s": t2 - t1, "second_run_s": t3 - t2}))


def cold_runs(paths: int, months: int, seed: int, threads: int) -> dict:
    """Two fresh processes sharing a new, empty NUMBA_CACHE_DIR: a true compile, then a cache load."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="numba_cold_") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("compile", "cached"):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_cold-child", "--paths", str(paths),
                   "--months", str(months), "--seed", str(seed), "--_threads", str(threads)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            wall = time.perf_counter() - t0
            rec = json.loads(proc.stdout.strip().splitlines()[-1])
            rec["process_wall_s"] = wall
            out[label] = rec
    return out


def cli_cold_runs(paths: int = 2_000) -> dict:
    """``hashprice curve --paths 2000`` end to end in fresh processes sharing a new, empty
    NUMBA_CACHE_DIR: the first run after an install (imports, compile, simulation, output), then
    the same with the cache filled. Wall seconds of each process."""
    out = {"paths": paths}
    with tempfile.TemporaryDirectory(prefix="numba_cli_") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "cache"))
        cmd = [sys.executable, "-m", "engine.app.cli", "curve", "--paths", str(paths),
               "--out", str(Path(tmp) / "c.csv")]
        for label in ("compile", "cached"):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            out[f"{label}_wall_s"] = time.perf_counter() - t0
    return out


def _numpy_child(paths: int, months: int, seed: int) -> None:
    """Runs in a fresh single-threaded process (BLAS threads pinned to 1): the NumPy reference."""
    market, model = Market.default(), ModelParams.default()
    windows, _, n_days = monthly_windows(market.asof, months)
    c0, w0 = os.times(), time.perf_counter()
    r = simulate_numpy(market, model, n_days=n_days, n_paths=paths, windows=windows, seed=seed)
    c1, w1 = os.times(), time.perf_counter()
    print(json.dumps({"paths": r.n_paths, "seconds": r.seconds, "call_wall_s": w1 - w0,
                      "cpu_seconds": (c1.user - c0.user) + (c1.system - c0.system),
                      "mean_cv": r.hashprice_mean_cv.tolist(), "stderr_cv": r.hashprice_stderr_cv.tolist()}))


def numpy_run(paths: int, months: int, seed: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_numpy-child", "--paths", str(paths),
           "--months", str(months), "--seed", str(seed)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_runs(market, model, windows, n_days, paths, seed, threads, repeats):
    sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads)
    run = sim.run(windows=windows)  # warm-up: loads the compiled kernel (or compiles it)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run = sim.run(windows=windows)
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "threads": min(threads, numba.config.NUMBA_NUM_THREADS),
        "paths": sim.n_paths,
        "times_s": times,
        "best_s": best,
        "median_s": statistics.median(times),
        "path_days_per_s": sim.n_paths * n_days / best,
    }, run


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--repeats", type=int, default=3, help="warm engine runs per thread count")
    ap.add_argument("--threads", default="1,2", help="comma-separated engine thread counts")
    ap.add_argument("--numpy-paths", type=int, default=None, help="default: --paths")
    ap.add_argument("--quantlib-paths", type=int, default=4_000)
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--_cold-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_numpy-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_threads", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._cold_child:
        _cold_child(args.paths, args.months, args.seed, args._threads)
        return {}
    if args._numpy_child:
        _numpy_child(args.paths, args.months, args.seed)
        return {}
    if args.quick:
        args.paths, args.months, args.repeats = min(args.paths, 4_000), min(args.months, 3), 2
        args.quantlib_paths = min(args.quantlib_paths, 100)
    numpy_paths = args.numpy_paths or args.paths
    thread_list = [int(x) for x in args.threads.split(",") if x.strip()]

    market, model = Market.default(), ModelParams.default()
    windows, labels, n_days = monthly_windows(market.asof, args.months)
    path_days = args.paths * n_days
    info = machine_info()
    print(f"{args.months} months ({labels[0]}..{labels[-1]}), {n_days} days, {args.paths:,} paths, "
          f"seed {args.seed}; {info['cpu_model']}, {info['usable_cores']} cores", flush=True)

    t0 = time.perf_counter()
    Simulation(market, model, n_days=n_days, n_paths=args.paths, seed=args.seed)
    setup_s = time.perf_counter() - t0

    cold, cli_cold = {}, {}
    if not args.skip_cold:
        for th in thread_list:
            print(f"cold engine run, {th} thread(s) (fresh process, empty Numba cache) ...", flush=True)
            cold[th] = cold_runs(args.paths, args.months, args.seed, th)
        print("hashprice curve --paths 2000, fresh process, empty Numba cache ...", flush=True)
        cli_cold = cli_cold_runs()

    warm, run = {}, None
    for th in thread_list:
        print(f"warm engine runs, {th} thread(s) ...", flush=True)
        warm[th], run = warm_runs(market, model, windows, n_days, args.paths, args.seed, th, args.repeats)
    eng_mean, eng_se = run.window_mean(HP), run.window_stderr(HP)
    info["numba_threading_layer_used"] = numba.threading_layer()
    info["loadavg_after_engine"] = loadavg()

    print(f"NumPy reference, {numpy_paths:,} paths (fresh process, 1 BLAS thread) ...", flush=True)
    npr = numpy_run(numpy_paths, args.months, args.seed + 1)
    np_mean, np_se = np.array(npr["mean_cv"]), np.array(npr["stderr_cv"])
    np_rate = npr["paths"] * n_days / npr["seconds"]
    z = (eng_mean - np_mean) / np.hypot(eng_se, np_se)

    print(f"QuantLib path generator (BTC only), {args.quantlib_paths:,} paths ...", flush=True)
    qlr = simulate_quantlib(market, n_days=n_days, n_paths=args.quantlib_paths, windows=windows,
                            seed=args.seed + 2)
    ql_gen_s = time_generator(market, n_days=n_days, n_paths=args.quantlib_paths, seed=args.seed + 3)
    ql_rate = qlr.path_days_per_s
    ql_gen_rate = qlr.n_paths * n_days / ql_gen_s

    best_th = max(warm, key=lambda k: warm[k]["path_days_per_s"])
    top = warm[best_th]["path_days_per_s"]
    rows = []
    for th, c in cold.items():
        s = c["compile"]["first_run_s"]
        rows.append((f"engine cold, first call incl. compile, {th} thr", args.paths, s, s,
                     path_days / s, top / (path_days / s)))
        s = c["cached"]["first_run_s"]
        rows.append((f"engine first call, on-disk cache, {th} thr", args.paths, s, s,
                     path_days / s, top / (path_days / s)))
    for th, w in warm.items():
        rows.append((f"engine warm best of {args.repeats}, {th} thr", w["paths"], w["best_s"], w["best_s"],
                     w["path_days_per_s"], top / w["path_days_per_s"]))
        rows.append((f"engine warm median, {th} thr", w["paths"], w["median_s"], w["median_s"],
                     w["paths"] * n_days / w["median_s"], top * w["median_s"] / (w["paths"] * n_days)))
    rows.append(("NumPy reference (same model), 1 thr", npr["paths"], npr["seconds"], path_days / np_rate,
                 np_rate, top / np_rate))
    rows.append(("QuantLib GaussianPathGenerator + monthly avg, BTC only", qlr.n_paths, qlr.seconds,
                 path_days / ql_rate, ql_rate, top / ql_rate))
    rows.append(("QuantLib GaussianPathGenerator, paths only, BTC only", qlr.n_paths, ql_gen_s,
                 path_days / ql_gen_rate, ql_gen_rate, top / ql_gen_rate))

    print()
    print(f"{'method':<56} {'paths':>8} {'seconds':>8} {f's @ {args.paths:,}':>11} "
          f"{'M path-days/s':>14} {'engine best / this':>19}")
    for name, paths, secs, scaled, rate, ratio in rows:
        print(f"{name:<56} {paths:>8,} {secs:>8.3f} {scaled:>11.3f} {rate / 1e6:>14.2f} {ratio:>18.1f}x")
    print()
    for th, w in warm.items():
        print(f"engine warm {th} thr vs NumPy: {w['path_days_per_s'] / np_rate:.2f}x; "
              f"vs QuantLib (with averaging): {w['path_days_per_s'] / ql_rate:.1f}x; "
              f"vs QuantLib (paths only): {w['path_days_per_s'] / ql_gen_rate:.1f}x")
    if cli_cold:
        print(f"hashprice curve --paths {cli_cold['paths']:,} end to end: {cli_cold['compile_wall_s']:.1f} s with an "
              f"empty Numba cache, {cli_cold['cached_wall_s']:.1f} s with it filled")
    print(f"NumPy CPU time / wall: {npr['cpu_seconds'] / npr['call_wall_s']:.2f} (1.0 = one core)")
    print(f"engine vs NumPy curve: max |z| over {len(windows)} months = {np.abs(z).max():.2f} "
          f"(control-variate means, combined stderr)")
    print(f"QuantLib BTC monthly averages vs forward: max |z| = "
          f"{np.abs((qlr.btc_mean - qlr.btc_forward_avg) / qlr.btc_stderr).max():.2f}")
    print(f"month 1 / {args.months}: engine {eng_mean[0]:.4f} +/- {eng_se[0]:.4f}, "
          f"{eng_mean[-1]:.4f} +/- {eng_se[-1]:.4f}; NumPy {np_mean[0]:.4f} +/- {np_se[0]:.4f}, "
          f"{np_mean[-1]:.4f} +/- {np_se[-1]:.4f} USD/PH/day")

    info["loadavg_end"] = loadavg()
    print(f"load average (1, 5, 15 min) at start {info['loadavg_start']}, end {info['loadavg_end']}")
    result = {
        "machine": info,
        "config": {"paths": args.paths, "months": args.months, "n_days": n_days, "seed": args.seed,
                   "asof": market.asof.isoformat(), "windows": "calendar months", "quick": args.quick,
                   "repeats": args.repeats, "numpy_paths": npr["paths"], "quantlib_paths": qlr.n_paths,
                   "path_days": path_days},
        "engine": {
            "setup_s": setup_s,
            "cold": {str(k): v for k, v in cold.items()},
            "cli_cold": cli_cold,
            "warm": {str(k): v for k, v in warm.items()},
        },
        "numpy": {"paths": npr["paths"], "seconds": npr["seconds"], "cpu_seconds": npr["cpu_seconds"],
                  "call_wall_s": npr["call_wall_s"],
                  "path_days_per_s": np_rate, "scaled_seconds_at_paths": path_days / np_rate,
                  "scaled": npr["paths"] != args.paths, "seed": args.seed + 1,
                  "process": "fresh, OPENBLAS/OMP/MKL_NUM_THREADS=1"},
        "quantlib": {"paths": qlr.n_paths, "seconds_with_averages": qlr.seconds,
                     "path_days_per_s_with_averages": ql_rate, "seconds_paths_only": ql_gen_s,
                     "path_days_per_s_paths_only": ql_gen_rate,
                     "scaled_seconds_at_paths": path_days / ql_rate, "factors": "BTC only"},
        "ratios_path_days_per_s": {
            **{f"engine_{k}thr_vs_numpy": w["path_days_per_s"] / np_rate for k, w in warm.items()},
            **{f"engine_{k}thr_vs_quantlib": w["path_days_per_s"] / ql_rate for k, w in warm.items()},
            **{f"engine_{k}thr_vs_quantlib_paths_only": w["path_days_per_s"] / ql_gen_rate
               for k, w in warm.items()},
        },
        "curve": {"months": labels,
                  "engine_mean": eng_mean.tolist(), "engine_stderr": eng_se.tolist(),
                  "numpy_mean": np_mean.tolist(), "numpy_stderr": np_se.tolist(),
                  "max_abs_z_engine_vs_numpy": float(np.abs(z).max()),
                  "units": "USD/PH/day, monthly average, BTC forward as control variate"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
