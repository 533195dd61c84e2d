"""Market-implied calibration: bootstrap a hashrate drift shift per tenor from quoted forwards.

Quotes made by the model itself with a known shift are recovered; the bootstrapped curve
reprices every quote within its standard error; the result is bit-identical run to run; bad
quote files are one-line errors naming the field; the CLI writes a shift file that ``curve``
and ``price`` accept.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import numba
import numpy as np
import pytest
from typer.testing import CliRunner

from curves.market import Market
from curves.periods import monthly_periods
from curves.toml_io import InputError
from engine.app.cli import app
from engine.calibration.hashrate_shift import HashrateShift, ShiftSegment
from engine.calibration.implied import bootstrap_hashrate_shift, reprice_quotes, segment_ends
from engine.calibration.quotes import Quote, load_quotes
from engine.mc.model import ModelParams
from engine.mc.simulation import DAYS_PER_YEAR
from engine.pricing.curve_builder import build_curve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_QUOTES = os.path.join(ROOT, "examples", "quotes.csv")
PATHS = 4_000
SEED = 11
OTHER_SEED = 12
MONTHS = [0, 1, 3, 5]  # Feb, Mar, May, Jul 2026: gaps in April and June
TRUE_SHIFT_PER_YEAR = np.array([0.6, -0.3, 0.4, 0.2])
HP = "hashprice_usd_per_ph_day"

runner = CliRunner()


@pytest.fixture(scope="module")
def market():
    return Market.default()


@pytest.fixture(scope="module")
def model():
    return ModelParams.default()


def _shift_on(quotes, asof, per_year) -> HashrateShift:
    segs, prev = [], asof
    for end, x in zip(segment_ends(quotes, asof), per_year):
        segs.append(ShiftSegment(prev + dt.timedelta(days=1), end, x / DAYS_PER_YEAR))
        prev = end
    return HashrateShift(asof, tuple(segs))


@pytest.fixture(scope="module")
def model_quotes(market, model):
    """Quotes that are the model's own forwards under a known piecewise shift (seed SEED)."""
    periods = monthly_periods(market.asof, 6)
    shell = [Quote(periods[i].start, periods[i].end, 40.0) for i in MONTHS]
    true = _shift_on(shell, market.asof, TRUE_SHIFT_PER_YEAR)
    curve = build_curve(market, model, months=6, paths=PATHS, seed=SEED, hashrate_shift_per_day=true)
    return [Quote(periods[i].start, periods[i].end, float(curve.hashprice_usd_per_ph_day[i])) for i in MONTHS]


@pytest.fixture(scope="module")
def calibrated(market, model, model_quotes):
    return bootstrap_hashrate_shift(market, model, model_quotes, paths=PATHS, seed=SEED)


# ---- (a) round trip --------------------------------------------------------------------------------
def test_recovers_known_shift_with_same_seed(calibrated):
    assert np.allclose(calibrated.shift_per_year, TRUE_SHIFT_PER_YEAR, rtol=0, atol=1e-6)
    assert np.allclose(calibrated.shift_per_day * DAYS_PER_YEAR, calibrated.shift_per_year)
    assert calibrated.fit["within_tolerance"].all()


def test_other_seed_recovers_shift_within_noise(market, model, model_quotes):
    other = bootstrap_hashrate_shift(market, model, model_quotes, paths=PATHS, seed=OTHER_SEED)
    assert np.allclose(other.shift_per_year, TRUE_SHIFT_PER_YEAR, rtol=0, atol=0.1)
    # the seed-B shift, priced on the quotes' own seed: two independent MC errors apart
    fwd, se = reprice_quotes(market, model, model_quotes, other.shift, paths=PATHS, seed=SEED)
    quote = np.array([q.hashprice_usd_per_ph_day for q in model_quotes])
    combined = np.hypot(se, other.fit["stderr_usd_per_ph_day"].to_numpy())
    assert np.all(np.abs(fwd - quote) <= 3 * combined), (fwd - quote) / combined


# ---- (b) the bootstrapped curve reprices every quote ------------------------------------------------
def test_example_quotes_repriced_by_curve(market, model):
    quotes = load_quotes(EXAMPLE_QUOTES, market.asof)
    assert len(quotes) >= 5 and all(q.start.year == 2026 for q in quotes)
    res = bootstrap_hashrate_shift(market, model, quotes, paths=PATHS, seed=SEED)
    assert (res.fit["error_stderrs"].abs() <= res.tol_stderr).all()
    assert res.fit["within_bid_ask"].all()
    assert np.all(res.shift_per_year > 0)  # quotes below the model: faster hashrate growth priced in
    months = (quotes[-1].end.year - 2026) * 12 + quotes[-1].end.month - 1  # Feb..Dec 2026
    curve = build_curve(market, model, months=months, paths=PATHS, seed=SEED,
                        hashrate_shift_per_day=res.hashrate_shift_per_day((quotes[-1].end - market.asof).days))
    for q in quotes:
        fwd, se = curve.forward_usd_per_ph_day(q.start, q.end)
        assert abs(fwd - q.hashprice_usd_per_ph_day) <= se, (q, fwd, se)


def test_shift_expands_flat_beyond_last_quote(calibrated):
    hs = calibrated.shift
    n = calibrated.n_days
    arr = calibrated.hashrate_shift_per_day()
    assert arr.shape == (n,)
    longer = hs.per_day(n + 90)
    assert np.array_equal(longer[:n], arr)
    assert np.all(longer[n:] == hs.segments[-1].shift_per_day)
    for s in hs.segments:  # day k is asof + k + 1
        a, b = (s.start - hs.asof).days - 1, (s.end - hs.asof).days
        assert np.all(longer[a:b] == s.shift_per_day)


def test_segments_lead_their_quotes(calibrated):
    """Each segment ends before its quote's window ends, a retarget epoch ahead of its middle."""
    for seg, q in zip(calibrated.shift.segments, calibrated.quotes):
        assert seg.end <= q.end
        assert (q.start + dt.timedelta(days=(q.days - 1) // 2) - seg.end).days <= 14
    assert calibrated.shift.segments[0].start == calibrated.asof + dt.timedelta(days=1)


def test_toml_round_trip_is_exact(calibrated, tmp_path):
    path = tmp_path / "shift.toml"
    calibrated.to_toml(path, header="test")
    back = HashrateShift.from_toml(path)
    assert back == calibrated.shift
    assert path.read_text().startswith("# test")


# ---- (c) determinism ----------------------------------------------------------------------------
def test_bit_identical_repeat_and_threads(market, model, model_quotes, calibrated):
    again = bootstrap_hashrate_shift(market, model, model_quotes, paths=PATHS, seed=SEED)
    assert np.array_equal(again.shift_per_day, calibrated.shift_per_day)
    assert again.fit.drop(columns=["id", "bid", "ask", "within_bid_ask"]).equals(
        calibrated.fit.drop(columns=["id", "bid", "ask", "within_bid_ask"]))
    if numba.config.NUMBA_NUM_THREADS >= 2:
        one = bootstrap_hashrate_shift(market, model, model_quotes, paths=PATHS, seed=SEED, threads=1)
        assert np.array_equal(one.shift_per_day, calibrated.shift_per_day)


# ---- (d) bad quotes -----------------------------------------------------------------------------
GOOD = "2026-02-01,2026-02-28,39.6\n2026-03-01,2026-03-31,41.0\n"
HEADER = "start,end,hashprice_usd_per_ph_day\n"


@pytest.mark.parametrize(("body", "field", "reason"), [
    (GOOD + "2026-04-01,2026-04-30,nan\n", "quote[2].hashprice_usd_per_ph_day", "finite"),
    (GOOD + "2026-04-01,2026-04-30,-3\n", "quote[2].hashprice_usd_per_ph_day", "> 0"),
    (GOOD + "2026-04-01,2026-04-30,\n", "quote[2].hashprice_usd_per_ph_day", "missing"),
    ("2026-02-10,2026-02-01,39.6\n", "quote[0].end", "before start"),
    ("2026-01-15,2026-02-14,39.6\n", "quote[0].start", "as-of"),
    (GOOD + "2026-03-15,2026-04-14,41.0\n", "quote[2].start", "overlaps"),
    ("2026-03-01,2026-03-31,41.0\n2026-02-01,2026-02-28,39.6\n", "quote[1].start", "sorted"),
    ("2026-02-31,2026-03-31,41.0\n", "quote[0].start", "ISO date"),
])
def test_bad_quote_csv(tmp_path, market, body, field, reason):
    path = tmp_path / "quotes.csv"
    path.write_text(HEADER + body)
    with pytest.raises(InputError) as err:
        load_quotes(path, market.asof)
    assert err.value.field == field
    assert reason in err.value.reason


def test_bad_quote_files(tmp_path, market):
    bad_toml = tmp_path / "q.toml"
    bad_toml.write_text('[[quote]]\nstart = 2026-02-01\nend = 2026-02-28\nhashprice_usd_per_ph_day = nan\n')
    with pytest.raises(InputError, match=r"quote\[0\].hashprice_usd_per_ph_day"):
        load_quotes(bad_toml, market.asof)
    ok_toml = tmp_path / "ok.toml"
    ok_toml.write_text('[[quote]]\nstart = 2026-02-01\nend = 2026-02-28\nhashprice_usd_per_ph_day = 39.6\n'
                       'bid = 39.4\nask = 39.8\n')
    assert load_quotes(ok_toml, market.asof) == [Quote(dt.date(2026, 2, 1), dt.date(2026, 2, 28), 39.6, 39.4, 39.8)]
    missing = tmp_path / "m.csv"
    missing.write_text("start,end,price\n2026-02-01,2026-02-28,39.6\n")
    with pytest.raises(InputError, match="hashprice_usd_per_ph_day: missing column"):
        load_quotes(missing)
    outside = tmp_path / "ba.csv"
    outside.write_text("start,end,hashprice_usd_per_ph_day,bid,ask\n2026-02-01,2026-02-28,39.6,39.7,39.9\n")
    with pytest.raises(InputError, match="outside bid/ask"):
        load_quotes(outside)
    with pytest.raises(InputError, match="unsupported"):
        load_quotes(tmp_path / "q.xlsx")


def test_unreachable_quote_is_a_clear_error(market, model):
    quotes = [Quote(dt.date(2026, 2, 1), dt.date(2026, 2, 28), 80.0)]  # double today's index in a month
    with pytest.raises(InputError) as err:
        bootstrap_hashrate_shift(market, model, quotes, paths=2_000, seed=SEED)
    assert err.value.field == "quote[0].hashprice_usd_per_ph_day"
    assert "cannot be reached" in err.value.reason


def test_bad_shift_files(calibrated, market):
    doc = calibrated.shift.to_dict()
    doc["segment"][1]["start"] = doc["segment"][1]["start"] + dt.timedelta(days=1)
    with pytest.raises(InputError, match=r"segment\[1\].start"):
        HashrateShift.from_dict(doc)
    doc = calibrated.shift.to_dict()
    doc["segment"][0]["shift_per_year"] = 1.0
    with pytest.raises(InputError, match=r"segment\[0\].shift_per_year"):
        HashrateShift.from_dict(doc)
    with pytest.raises(InputError, match="shift.asof"):
        calibrated.shift.per_day(10, market.asof + dt.timedelta(days=1))


# ---- (e) CLI ------------------------------------------------------------------------------------
def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_calibrate_then_curve_and_price(tmp_path):
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("# test quotes\nstart,end,hashprice_usd_per_ph_day\n"
                      "2026-02-01,2026-02-28,39.6\n2026-03-01,2026-03-31,41.0\n2026-04-01,2026-04-30,41.1\n")
    shift = tmp_path / "out" / "shift.toml"
    common = ["--paths", PATHS, "--seed", SEED]
    res = _invoke("calibrate-quotes", quotes, *common, "--out", shift, "--json")
    assert res.exit_code == 0, res.stderr + repr(res.exception)
    doc = json.loads(res.stdout)
    assert [q["quote_usd_per_ph_day"] for q in doc["quotes"]] == [39.6, 41.0, 41.1]
    assert all(abs(q["error_stderrs"]) <= 0.1 for q in doc["quotes"])
    assert len(doc["segments"]) == 3 and doc["out"] == str(shift) and shift.exists()

    res = _invoke("curve", "--months", 3, *common, "--shift", shift, "--json")
    assert res.exit_code == 0, res.stderr + repr(res.exception)
    months = json.loads(res.stdout)["months"]
    for m, q in zip(months, doc["quotes"]):
        assert (m["start"], m["end"]) == (q["start"], q["end"])
        assert abs(m[HP] - q["quote_usd_per_ph_day"]) <= m["hashprice_stderr"]

    portfolio = tmp_path / "p.toml"
    portfolio.write_text('[[trade]]\nid = "mar"\ntype = "hashprice_forward"\nstart = 2026-03-01\n'
                         'end = 2026-03-31\nstrike = 41.0\ncurrency = "USD"\nsize_phs = 10.0\nside = "buy"\n')
    res = _invoke("price", portfolio, *common, "--shift", shift, "--json")
    assert res.exit_code == 0, res.stderr + repr(res.exception)
    trade = json.loads(res.stdout)["trades"][0]
    assert abs(trade["fair_rate"] - 41.0) <= 0.01, trade


def test_cli_bad_quotes_one_line_error_and_no_file(tmp_path):
    quotes = tmp_path / "quotes.csv"
    quotes.write_text(HEADER + "2026-02-01,2026-02-28,39.6\n2026-03-01,2026-03-31,nan\n")
    out = tmp_path / "shift.toml"
    res = _invoke("calibrate-quotes", quotes, "--paths", 2_000, "--out", out)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {quotes}: quote[1].hashprice_usd_per_ph_day"), res.stderr
    assert not out.exists()
    res = _invoke("calibrate-quotes", quotes, "--out", tmp_path / "shift.csv")
    assert res.exit_code == 2 and "error: out:" in res.stderr
    res = _invoke("calibrate-quotes", tmp_path / "nope.csv")
    assert res.exit_code == 2 and "error: quotes:" in res.stderr
    bad_shift = tmp_path / "bad.toml"
    bad_shift.write_text("asof = 2026-01-31\n[[segment]]\nstart = 2026-02-02\nend = 2026-03-01\nshift_per_day = 0.0\n")
    res = _invoke("curve", "--months", 1, "--paths", 2_000, "--shift", bad_shift)
    assert res.exit_code == 2 and "error: shift.segment[0].start" in res.stderr, res.stderr
