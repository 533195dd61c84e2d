"""Market snapshot: embedded defaults, file round trip, QuantLib curves against closed forms, bad input."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import tomli_w

from curves import protocol
from curves.market import CurvePoint, Market
from curves.toml_io import InputError

ASOF = dt.date(2026, 1, 31)
DATES = [ASOF + dt.timedelta(days=n) for n in (1, 30, 59, 181, 365, 730, 1826)]


@pytest.fixture(scope="module")
def market() -> Market:
    return Market.default()


def t_years(d: dt.date) -> float:
    return (d - ASOF).days / 365.0


def from_default(**changes) -> Market:
    table = Market.default().to_dict()
    table.update(changes)
    return Market.from_dict(table)


# ---- defaults -----------------------------------------------------------------------------------
def test_default_values(market):
    assert market.asof == ASOF
    assert market.height == 934_546
    assert market.epoch_blocks_elapsed == 1139  # 934,546 - 933,408 + 1
    assert market.height - market.epoch_blocks_elapsed + 1 == 933_408  # the epoch's first block
    assert (market.height - market.epoch_blocks_elapsed + 1) % 2016 == 0
    assert market.subsidy_btc == 3.125
    assert market.btc_spot_usd > 0 and market.difficulty > 1e14
    assert market.provenance
    assert [p.date for p in market.btc_vols] == sorted(p.date for p in market.btc_vols)


def test_default_spot_hashprice_is_protocol_formula(market):
    reward = 3.125 + market.fee_btc_per_block
    hand = 86_400 * 1e15 * reward / (market.difficulty * 2**32) * market.btc_spot_usd
    assert market.spot_hashprice_usd_per_ph_day() == pytest.approx(hand, rel=1e-12)
    assert market.spot_hashvalue_btc_per_ph_day() == pytest.approx(hand / market.btc_spot_usd, rel=1e-12)
    assert market.spot_hashprice_usd_per_ph_day() == pytest.approx(
        protocol.hashprice_usd_per_ph_day(market.difficulty, 3.125, market.fee_btc_per_block,
                                          market.btc_spot_usd), rel=1e-14)


def test_default_hashrate_is_plausible_against_difficulty(market):
    implied_ehs = protocol.hashrate_hs_from_difficulty(market.difficulty) / 1e18
    assert 0.9 < market.hashrate_ehs / implied_ehs < 1.1  # the filtered level, not the storm-dipped week
    assert 0.02 < market.hashrate_log_sd < 0.08
    assert market.feedback_hashprice_usd_per_ph_day() == market.hashprice_ema_usd_per_ph_day
    assert market.hashprice_ema_usd_per_ph_day > market.spot_hashprice_usd_per_ph_day()


def test_feedback_average_falls_back_to_spot_only_when_absent(market):
    bare = market.with_(hashprice_ema_usd_per_ph_day=None)
    assert bare.feedback_hashprice_usd_per_ph_day() == market.spot_hashprice_usd_per_ph_day()
    assert "hashprice_ema_usd_per_ph_day" not in bare.to_dict()
    with pytest.raises(InputError, match="hashrate_log_sd"):
        market.with_(hashrate_log_sd=-0.01)
    with pytest.raises(InputError, match="hashrate_log_sd"):
        market.with_(hashrate_log_sd=0.9)


# ---- files --------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, market):
    path = tmp_path / "m.toml"
    market.save(path)
    loaded = Market.load(path)
    assert loaded == market
    assert loaded.btc_vols == market.btc_vols
    assert loaded.discount(DATES[4]) == market.discount(DATES[4])
    assert [p.name for p in tmp_path.iterdir()] == ["m.toml"]  # atomic write leaves no temp file


def test_round_trip_with_all_curves(tmp_path):
    m = from_default(
        usd_zero_rates=[{"date": dt.date(2026, 7, 31), "value": 0.041},
                        {"date": dt.date(2027, 1, 31), "value": 0.039}],
        btc_futures_usd=[{"date": dt.date(2026, 3, 27), "value": 79_500.0},
                         {"date": dt.date(2026, 6, 26), "value": 80_600.0}],
    )
    m.save(tmp_path / "m.toml")
    assert Market.load(tmp_path / "m.toml") == m


def test_with_copies_and_keeps_curve_points(market):
    bumped = market.with_(btc_spot_usd=market.btc_spot_usd * 1.01)
    assert bumped.btc_vols == market.btc_vols
    expected = market.btc_forward_usd(DATES[3]) * 1.01
    assert bumped.btc_forward_usd(DATES[3]) == pytest.approx(expected, rel=1e-12)
    assert market.btc_spot_usd == Market.default().btc_spot_usd  # the original is untouched


# ---- QuantLib curves against closed forms -------------------------------------------------------
@pytest.mark.parametrize("d", DATES)
def test_flat_usd_discount(market, d):
    assert market.usd_zero_rates == ()
    assert market.discount(d) == pytest.approx(math.exp(-market.usd_rate * t_years(d)), rel=1e-12)
    assert market.year_fraction(d) == pytest.approx(t_years(d), rel=1e-15)


def test_discount_at_asof_is_one(market):
    assert market.discount(ASOF) == 1.0
    assert market.btc_forward_usd(ASOF) == market.btc_spot_usd


@pytest.mark.parametrize("d", DATES)
def test_flat_basis_btc_forward(market, d):
    expected = market.btc_spot_usd * math.exp(market.btc_basis_annual * t_years(d))
    assert market.btc_forward_usd(d) == pytest.approx(expected, rel=1e-12)


def test_zero_rate_points_reprice():
    pts = [(dt.date(2026, 7, 31), 0.041), (dt.date(2027, 1, 31), 0.039), (dt.date(2028, 1, 31), 0.037)]
    m = from_default(usd_zero_rates=[{"date": d, "value": v} for d, v in pts])
    for d, r in pts:
        assert m.discount(d) == pytest.approx(math.exp(-r * t_years(d)), rel=1e-12)


def test_zero_curve_is_flat_before_its_first_point():
    # QuantLib's ZeroCurve gets the first point's rate at the as-of date too; were it 0 there, the
    # rate would ramp up linearly over the first six months
    first, second = (dt.date(2026, 7, 31), 0.041), (dt.date(2027, 1, 31), 0.037)
    m = from_default(usd_zero_rates=[{"date": d, "value": v} for d, v in (first, second)])
    for d in (ASOF + dt.timedelta(days=1), dt.date(2026, 3, 31), dt.date(2026, 6, 30), first[0]):
        assert m.discount(d) == pytest.approx(math.exp(-0.041 * t_years(d)), rel=1e-12), d
    # between the points the zero rate is linear in time
    mid = dt.date(2026, 10, 31)
    w = (mid - first[0]).days / (second[0] - first[0]).days
    assert m.discount(mid) == pytest.approx(math.exp(-(0.041 + w * (0.037 - 0.041)) * t_years(mid)), rel=1e-12)


def test_futures_quotes_reprice_exactly():
    quotes = [(dt.date(2026, 2, 27), 78_950.0), (dt.date(2026, 3, 27), 79_500.0),
              (dt.date(2026, 6, 26), 80_600.0), (dt.date(2026, 12, 25), 82_900.0)]
    m = from_default(btc_futures_usd=[{"date": d, "value": v} for d, v in quotes])
    for d, f in quotes:
        assert m.btc_forward_usd(d) == pytest.approx(f, rel=1e-10)
    # between quotes the forward lies between its neighbours (log-linear in price)
    mid = m.btc_forward_usd(dt.date(2026, 5, 1))
    assert 79_500.0 < mid < 80_600.0


@pytest.mark.parametrize("d", DATES)
def test_flat_vol_total_variance(market, d):
    flat = market.with_(btc_vols=(), btc_vol=0.6)
    assert flat.btc_total_variance(d) == pytest.approx(0.36 * t_years(d), rel=1e-12)
    assert flat.btc_implied_vol(d) == pytest.approx(0.6, rel=1e-12)


def test_vol_points_reprice(market):
    for p in market.btc_vols:
        assert market.btc_implied_vol(p.date) == pytest.approx(p.value, rel=1e-10)
        assert market.btc_total_variance(p.date) == pytest.approx(p.value**2 * t_years(p.date), rel=1e-10)
    assert market.btc_total_variance(ASOF) == 0.0


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"btc_spot_usd": float("nan")}, "btc_spot_usd"),
        ({"btc_spot_usd": -1.0}, "btc_spot_usd"),
        ({"btc_spot_usd": 0.0}, "btc_spot_usd"),
        ({"btc_spot_usd": "lots"}, "btc_spot_usd"),
        ({"difficulty": -1e14}, "difficulty"),
        ({"difficulty": float("inf")}, "difficulty"),
        ({"fee_btc_per_block": -0.1}, "fee_btc_per_block"),
        ({"usd_rate": float("nan")}, "usd_rate"),
        ({"usd_rate": "four percent"}, "usd_rate"),
        ({"height": -1}, "height"),
        ({"height": 1.5}, "height"),
        ({"height": True}, "height"),
        ({"asof": "2026-02-30"}, "asof"),
        ({"btc_vols": [{"date": dt.date(2026, 1, 15), "value": 0.4}]}, "btc_vols[0].date"),
        ({"btc_vols": [{"date": ASOF, "value": 0.4}]}, "btc_vols[0].date"),
        ({"btc_vols": [{"date": dt.date(2026, 6, 30), "value": 0.4},
                       {"date": dt.date(2026, 3, 31), "value": 0.45}]}, "btc_vols"),
        ({"btc_vols": [{"date": dt.date(2026, 6, 30), "value": 0.4},
                       {"date": dt.date(2026, 6, 30), "value": 0.45}]}, "btc_vols"),
        ({"btc_vols": [{"date": dt.date(2026, 6, 30), "value": -0.4}]}, "btc_vols[0].value"),
        ({"btc_vols": [{"date": dt.date(2026, 6, 30)}]}, "btc_vols[0]"),
        ({"btc_futures_usd": [{"date": dt.date(2026, 6, 30), "value": float("nan")}]},
         "btc_futures_usd[0].value"),
        ({"usd_zero_rates": [{"date": dt.date(2026, 6, 30), "value": "x"}]}, "usd_zero_rates[0].value"),
        ({"btc_spot_eur": 70_000.0}, "btc_spot_eur"),
    ],
)
def test_bad_input_names_field(changes, field):
    with pytest.raises(InputError) as info:
        from_default(**changes)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_missing_field_is_named():
    table = Market.default().to_dict()
    del table["difficulty"]
    with pytest.raises(InputError, match="^difficulty: "):
        Market.from_dict(table)


def test_bad_file_names_field(tmp_path):
    table = Market.default().to_dict()
    table["btc_spot_usd"] = float("nan")
    path = tmp_path / "m.toml"
    path.write_text(tomli_w.dumps(table))
    with pytest.raises(InputError) as info:
        Market.load(path)
    assert info.value.field == "btc_spot_usd"
    assert str(info.value) == f"{path}: btc_spot_usd: must be finite, got nan"  # file, field, reason
    with pytest.raises(InputError, match="file not found"):
        Market.load(tmp_path / "missing.toml")


def test_curve_point_inputs_accepted_by_constructor(market):
    pts = (CurvePoint(dt.date(2026, 6, 30), 0.5),)
    assert market.with_(btc_vols=pts).btc_vols == pts
    with pytest.raises(InputError, match=r"^btc_vols\[0\]\.date: "):
        market.with_(btc_vols=(CurvePoint(dt.date(2025, 6, 30), 0.5),))
