"""Benchmark: the miner's hedge of ``examples/fleet.toml`` at 100,000 paths, alone and with the
fleet's Greeks (bump and reprice on common random numbers), in one run.

Warm (the kernel compiled first), best of N, on the default market and model. The hedge run
simulates the fleet's 12 months and the token's 24 (one simulation: without a shift the
physical and pricing measures coincide), prices the NDFs and collars, and reduces every
hedge's cash flow at risk; the Greeks run reprices the fleet and the token in every bumped
scenario of ``hashprice risk`` (no scenario grid).

    python benchmarks/bench_hedge.py                 # 100,000 paths
    python benchmarks/bench_hedge.py --quick         # a smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_curve import machine_info  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.risk.greeks import portfolio_risk  # noqa: E402
from engine.risk.hedge import hedge_fleet  # noqa: E402
from products.fleet_file import load_fleet_file  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_hedge.json"
FLEET = ROOT / "examples" / "fleet.toml"


def best_of(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="4,096 paths, 1 repeat")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.paths, args.repeats = 4_096, 1
    market, model = Market.default(), ModelParams.default()
    ff = load_fleet_file(FLEET)
    book = [t for t in (ff.position(market.asof), ff.token_trade(market.asof)) if t is not None]
    hedge_fleet(ff, market, model, paths=2_048, seed=1)  # compile or load the kernel
    hedge_times, res = best_of(lambda: hedge_fleet(ff, market, model, paths=args.paths, seed=args.seed),
                               args.repeats)
    greek_times, rep = best_of(lambda: portfolio_risk(book, market, model, paths=args.paths, seed=args.seed,
                                                      grid=None), args.repeats)
    total = min(hedge_times) + min(greek_times)
    result = {
        "benchmark": "hedge",
        "machine": machine_info(),
        "settings": {"fleet": "examples/fleet.toml", "paths": res.report["paths"], "seed": args.seed,
                     "repeats": args.repeats, "months": len(res.report["months"]),
                     "greeks_scenarios": rep.extra["scenarios"]},
        "hedge": {"times_s": hedge_times, "best_s": min(hedge_times)},
        "greeks": {"times_s": greek_times, "best_s": min(greek_times)},
        "hedge_with_greeks_s": total,
        "effectiveness": {h: p["effectiveness"] for h, p in res.report["pnl"].items()},
        "fleet_greeks": [r for r in rep.portfolio_rows()],
    }
    print(f"hedge             {min(hedge_times):7.2f} s ({args.paths:,} paths)")
    print(f"fleet Greeks      {min(greek_times):7.2f} s ({rep.extra['scenarios']} scenarios)")
    print(f"hedge with Greeks {total:7.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
