"""Benchmark: a generated 1,000-trade mixed portfolio against the curve alone, in one run.

Both on the default market, 100,000 paths and 36 months: the curve is ``build_curve`` (36
monthly windows); the portfolio is ``price_trades`` on trades of every simulated and closed-form
type, generated from a seed (NDFs, caps, floors, collars, HUP futures, difficulty swaps and
futures, hashvalue futures, deliverable forwards, BTC futures and options), with and without
its cash-flow report. Warm timings (the kernel compiled first), best of N.

    python benchmarks/bench_portfolio.py              # 1,000 trades, 100,000 paths
    python benchmarks/bench_portfolio.py --quick      # a smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.bench_curve import machine_info  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.pricing.curve_builder import build_curve  # noqa: E402
from engine.pricing.pricer import price_trades  # noqa: E402
from products.portfolio import parse_portfolio  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_portfolio.json"
MIX = {"hashprice_forward": 250, "hashprice_cap": 90, "hashprice_floor": 80, "hashprice_collar": 80,
       "hashrate_future": 100, "difficulty_swap": 100, "difficulty_future": 100, "hashvalue_future": 80,
       "deliverable_forward": 40, "btc_future": 40, "btc_option": 40}


def month_start(market: Market, k: int) -> dt.date:
    y, m = divmod(market.asof.month - 1 + k + 1, 12)
    return dt.date(market.asof.year + y, m + 1, 1)


def month_end(market: Market, k: int) -> dt.date:
    return month_start(market, k + 1) - dt.timedelta(days=1)


def generate(n: int, months: int, market: Market, seed: int) -> list[dict]:
    """``n`` trades in the proportions of ``MIX``, dates on month boundaries within ``months``."""
    rng = np.random.default_rng(seed)
    types = [t for t, w in MIX.items() for _ in range(w)]
    hp = market.spot_hashprice_usd_per_ph_day()
    hv = market.spot_hashvalue_btc_per_ph_day()
    epoch0 = market.height - market.height % 2016
    out = []
    for k in range(n):
        kind = types[k % len(types)]
        a = int(rng.integers(0, months - 1))
        b = int(min(months - 1, a + rng.integers(0, 12)))
        side = "buy" if rng.random() < 0.5 else "sell"
        usd = rng.random() < 0.7
        strike = float(hp * rng.uniform(0.7, 1.3)) if usd else float(hv * rng.uniform(0.7, 1.3))
        t = {"id": f"t{k}", "type": kind, "side": side}
        window = {"start": month_start(market, a), "end": month_end(market, b)}
        if kind == "hashprice_forward":
            t |= {**window, "strike": strike, "currency": "USD" if usd else "BTC",
                  "size_phs": float(rng.uniform(1, 500))}
        elif kind in ("hashprice_cap", "hashprice_floor"):
            t |= {**window, "strike": strike, "currency": "USD" if usd else "BTC",
                  "size_phs": float(rng.uniform(1, 500))}
        elif kind == "hashprice_collar":
            t |= {**window, "floor_strike": 0.85 * strike, "cap_strike": 1.15 * strike,
                  "currency": "USD" if usd else "BTC", "size_phs": float(rng.uniform(1, 500))}
        elif kind == "hashrate_future":
            t |= {"start": month_start(market, a), "contracts": int(rng.integers(1, 200)),
                  "price_usd_per_ph_day": round(hp * rng.uniform(0.8, 1.2), 2)}
        elif kind == "difficulty_swap":
            t |= {"epoch_height": epoch0 + 2016 * int(rng.integers(1, 27)),  # the next year: BitOoda-like
                  "strike_difficulty": float(market.difficulty * rng.uniform(0.9, 1.6)),
                  "notional_usd": float(rng.uniform(1e4, 1e6))}
        elif kind == "difficulty_future":
            t |= {**window, "contracts": int(rng.integers(1, 100)),
                  "price_points": float(market.difficulty / 1e12 * rng.uniform(0.9, 1.8))}
        elif kind == "hashvalue_future":
            t |= {"maturity": month_start(market, min(a, months - 2)), "contracts": float(rng.uniform(1, 100)),
                  "price_btc": float(hv * 14 * rng.uniform(0.6, 1.1))}
        elif kind == "deliverable_forward":
            t |= {**window, "size_phs": float(rng.uniform(1, 500)), "payment_date": window["start"],
                  "price_btc_per_ph_day": float(hv * rng.uniform(0.8, 1.0))}
        elif kind == "btc_future":
            t |= {"expiry": month_end(market, a), "contracts": int(rng.integers(1, 50)), "contract_btc": 0.1,
                  "price_usd": float(market.btc_spot_usd * rng.uniform(0.9, 1.2)),
                  "style": "linear" if rng.random() < 0.5 else "inverse"}
        else:
            t |= {"expiry": month_end(market, a), "strike_usd": float(market.btc_spot_usd * rng.uniform(0.6, 1.4)),
                  "option": "call" if rng.random() < 0.5 else "put", "size_btc": float(rng.uniform(0.1, 20))}
        out.append(t)
    return out


def best_of(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=1_000)
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100 trades, 4,096 paths, 12 months, 1 repeat")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.trades, args.paths, args.months, args.repeats = 100, 4_096, 12, 1
    market, model = Market.default(), ModelParams.default()
    trades, errors = parse_portfolio({"trade": generate(args.trades, args.months, market, args.seed)})
    if errors:
        raise SystemExit(f"generated trades failed their checks: {errors[:3]}")

    def curve():
        return build_curve(market, model, months=args.months, paths=args.paths, seed=args.seed)

    def portfolio(flows: bool):
        return price_trades(trades, market, model, paths=args.paths, seed=args.seed, cash_flows=flows)

    price_trades(trades[:50], market, model, paths=2_048, seed=1)  # compile or load the kernel
    curve_times, _ = best_of(curve, args.repeats)
    pf_times, res = best_of(lambda: portfolio(False), args.repeats)
    flow_times, res_flows = best_of(lambda: portfolio(True), max(1, args.repeats - 1))
    bad = [(t.trade_id, t.error) for t in res.trades if t.error is not None]
    result = {
        "benchmark": "portfolio",
        "machine": machine_info(),
        "settings": {"trades": len(trades), "paths": res.paths, "months": args.months, "seed": args.seed,
                     "repeats": args.repeats, "types": dict(Counter(t.type_name for t in trades))},
        "curve_alone": {"times_s": curve_times, "best_s": min(curve_times)},
        "portfolio": {"times_s": pf_times, "best_s": min(pf_times), "median_s": statistics.median(pf_times)},
        "portfolio_with_cash_flows": {"times_s": flow_times, "best_s": min(flow_times)},
        "ratio_to_curve": min(pf_times) / min(curve_times),
        "ratio_to_curve_with_cash_flows": min(flow_times) / min(curve_times),
        "trades_with_errors": bad,
        "total_pv_usd": res.total_pv_usd,
        "cash_flows": int(sum(len(t.cashflows) for t in res_flows.trades)),
    }
    print(f"curve alone        {min(curve_times):7.2f} s")
    print(f"portfolio          {min(pf_times):7.2f} s  ({result['ratio_to_curve']:.2f}x the curve)")
    print(f"  with cash flows  {min(flow_times):7.2f} s  ({result['ratio_to_curve_with_cash_flows']:.2f}x)")
    print(f"{len(trades)} trades, {len(bad)} with errors")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
