"""Protocol math against values computed by hand."""

import pytest

from curves import protocol


def test_luxor_check_value():
    # 86,400 * 1e15 * 3.125 / (1e14 * 2^32) BTC/PH/day, times 100,000 USD/BTC
    expected = 86_400 * 1e15 * 3.125 / (1e14 * 4_294_967_296) * 100_000
    assert expected == pytest.approx(62.8642737865, rel=1e-10)
    assert protocol.hashprice_usd_per_ph_day(1e14, 3.125, 0.0, 100_000.0) == pytest.approx(expected, rel=1e-14)


def test_fee_adds_to_reward():
    hv = protocol.hashvalue_btc_per_ph_day(1e14, 3.125, 0.125)
    assert hv == pytest.approx(86_400 * 1e15 * 3.25 / (1e14 * 2**32), rel=1e-14)


@pytest.mark.parametrize(
    ("height", "sats"),
    [(0, 5_000_000_000), (209_999, 5_000_000_000), (210_000, 2_500_000_000), (420_000, 1_250_000_000),
     (629_999, 1_250_000_000), (630_000, 625_000_000), (840_000, 312_500_000),
     (1_049_999, 312_500_000), (1_050_000, 156_250_000), (64 * 210_000, 0), (33 * 210_000, 0)],
)
def test_subsidy_schedule(height, sats):
    assert protocol.subsidy_sats(height) == sats
    assert protocol.subsidy_btc(height) == sats / 1e8


def test_subsidy_integer_shift_at_tiny_values():
    # 50 BTC >> 32 = 1 satoshi (integer shift, not a float division), >> 33 = 0
    assert protocol.subsidy_sats(32 * 210_000) == 1
    assert protocol.subsidy_sats(33 * 210_000) == 0


def test_next_halving_height():
    assert protocol.next_halving_height(934_546) == 1_050_000
    assert protocol.next_halving_height(1_049_999) == 1_050_000
    assert protocol.next_halving_height(1_050_000) == 1_260_000


@pytest.mark.parametrize(
    ("timespan_s", "factor"),
    [(1_209_600.0, 1.0), (604_800.0, 2.0), (2_419_200.0, 0.5), (302_400.0, 4.0), (1.0, 4.0),
     (4_838_400.0, 0.25), (1e9, 0.25)],
)
def test_retarget_and_clamp(timespan_s, factor):
    assert protocol.retarget_difficulty(1e14, timespan_s) == pytest.approx(1e14 * factor, rel=1e-15)


def test_hashrate_difficulty_round_trip():
    d = 1e14
    h = protocol.hashrate_hs_from_difficulty(d)
    assert h == pytest.approx(1e14 * 2**32 / 600, rel=1e-15)
    assert protocol.difficulty_from_hashrate_hs(h) == pytest.approx(d, rel=1e-15)
    assert protocol.blocks_per_day(h, d) == pytest.approx(144.0, rel=1e-15)
