"""Benchmark: the risk of ``examples/portfolio.toml`` (the full ladder and the default scenario
grid) at 100,000 paths, against pricing the same portfolio once, in one run.

Both on the default market and model, warm (the kernel compiled first), best of N. The risk run
reprices every scenario (base, BTC +-1%, vols +-1 point, hashrate, drift, fees, rates, the rolled
day, and the 5 x 3 grid) on common random numbers. With ``--quotes`` it also times a run with
deltas to ``examples/quotes.csv`` (each quote re-bootstrapped at 20,000 paths), once.

    python benchmarks/bench_risk.py                 # 100,000 paths
    python benchmarks/bench_risk.py --quick         # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_curve import machine_info  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.calibration.quotes import load_quotes  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.pricing.pricer import price_trades  # noqa: E402
from engine.risk.greeks import portfolio_risk  # noqa: E402
from engine.risk.scenario_grid import DEFAULT_SCENARIOS, ScenarioGrid  # noqa: E402
from products.portfolio import load_portfolio  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_risk.json"
PORTFOLIO = ROOT / "examples" / "portfolio.toml"
QUOTES = ROOT / "examples" / "quotes.csv"


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
    ap.add_argument("--quotes", action="store_true", help="also time a run with deltas to examples/quotes.csv")
    ap.add_argument("--quick", action="store_true", help="4,096 paths, 1 repeat")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.paths, args.repeats = 4_096, 1
    market, model = Market.default(), ModelParams.default()
    trades, errors = load_portfolio(PORTFOLIO)
    grid = ScenarioGrid.parse(DEFAULT_SCENARIOS)

    def risk(**kw):
        return portfolio_risk(trades, market, model, paths=args.paths, seed=args.seed, errors=errors, grid=grid, **kw)

    machine = machine_info()  # before the runs: its load average is the one they start under
    portfolio_risk(trades, market, model, paths=2_048, seed=1, grid=None)  # compile or load the kernel
    price_times, priced = best_of(lambda: price_trades(trades, market, model, paths=args.paths, seed=args.seed),
                                  args.repeats)
    risk_times, rep = best_of(risk, args.repeats)
    frame = rep.to_frame()
    total = {r["measure"]: {"value": r["value"], "stderr": r["stderr"], "unit": r["unit"]}
             for r in rep.portfolio_rows()}
    result = {
        "benchmark": "risk",
        "machine": machine,
        "loadavg_end": list(os.getloadavg()),
        "settings": {"portfolio": "examples/portfolio.toml", "trades": len(trades), "paths": rep.paths,
                     "seed": args.seed, "repeats": args.repeats, "scenarios_grid": str(grid),
                     "scenarios": rep.extra["scenarios"], "measures_per_trade": int(frame.measure.nunique()),
                     "chunk_paths": rep.extra["chunk_paths"], "n_days": rep.extra["n_days"]},
        "price_once": {"times_s": price_times, "best_s": min(price_times)},
        "risk": {"times_s": risk_times, "best_s": min(risk_times)},
        "risk_over_price": min(risk_times) / min(price_times),
        "seconds_per_scenario": min(risk_times) / rep.extra["scenarios"],
        "ladder_rows": len(frame),
        "rows_with_errors": int(frame.error.notna().sum()),
        "portfolio": total,
        "priced_total_pv_usd": priced.total_pv_usd,
    }
    print(f"price once        {min(price_times):7.2f} s")
    print(f"risk (ladder + {len(rep.grid)}-cell grid, {rep.extra['scenarios']} scenarios) {min(risk_times):7.2f} s "
          f"({result['risk_over_price']:.1f}x pricing once)")
    if args.quotes:
        quotes = load_quotes(QUOTES, market.asof)
        quote_times, qrep = best_of(lambda: risk(quotes=quotes), 1)
        result["risk_with_quotes"] = {"times_s": quote_times, "best_s": min(quote_times), "quotes": len(quotes),
                                      "calibration_paths": qrep.extra["quote_calibration"]["paths"],
                                      "scenarios": qrep.extra["scenarios"]}
        print(f"risk with {len(quotes)} quote deltas {min(quote_times):7.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
