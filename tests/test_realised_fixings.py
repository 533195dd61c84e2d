"""Realised-fixings file: a daily network history or a published index, and its window sums."""

import datetime as dt
import io

import pandas as pd
import pytest
from real_data import DAILY_CSV, needs_data

from curves.toml_io import InputError
from engine.data.index import hashprice_history
from engine.data.load import HistoryError, load_network_history
from engine.data.realised_fixings import load_realised_fixings

# At D0 = 86,400 * 1e15 / 2^32 one PH/s expects one block a day, so hashvalue is the reward per block.
D0 = 86_400 * 1e15 / 2**32
HISTORY_HEADER = "date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks"
# (date, price, difficulty, fees, subsidy, blocks): reward/block 3.25, 3.5, 3.0 BTC at D0, 2 D0, 4 D0
HISTORY_DAYS = [
    ("2026-01-01", 40_000.0, D0, 18.0, 450.0, 144),
    ("2026-01-02", 50_000.0, 2 * D0, 54.0, 450.0, 144),
    ("2026-01-03", 60_000.0, 4 * D0, 12.5, 437.5, 150),
]
HASHVALUE = [3.25, 1.75, 0.75]  # reward / (D / D0)
HASHPRICE = [130_000.0, 87_500.0, 45_000.0]  # hashvalue * price
JAN1, JAN2, JAN3 = dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)


def history_csv(days=HISTORY_DAYS) -> str:
    rows = [f"{d},{p!r},{dif * b * 2**32 / 86_400 / 1e12!r},{dif!r},{f!r},{s!r},{b}"
            for d, p, dif, f, s, b in days]
    return "\n".join([HISTORY_HEADER, *rows]) + "\n"


def index_csv(rows, header="date,hashprice_usd_per_ph_day,hashvalue_btc_per_ph_day") -> io.StringIO:
    return io.StringIO("\n".join([header, *rows]) + "\n")


def test_history_file_by_hand(tmp_path):
    path = tmp_path / "fixings.csv"
    path.write_text(history_csv())
    f = load_realised_fixings(path)
    assert f.quantities == ("hashprice_usd_per_ph_day", "hashvalue_btc_per_ph_day", "btc_usd", "difficulty",
                            "blocks_per_day", "difficulty_per_block", "difficulty_x_blocks")
    assert (f.first, f.last) == (JAN1, JAN3)
    for day, hv, hp in zip((JAN1, JAN2, JAN3), HASHVALUE, HASHPRICE):
        assert f.window_sum("hashvalue_btc_per_ph_day", day, day) == pytest.approx(hv, rel=1e-12)
        assert f.window_sum("hashprice_usd_per_ph_day", day, day) == pytest.approx(hp, rel=1e-12)
    assert f.window_sum("hashprice_usd_per_ph_day", JAN1, JAN3) == pytest.approx(262_500.0, rel=1e-12)
    assert f.window_mean("hashprice_usd_per_ph_day", JAN2, JAN3) == pytest.approx(66_250.0, rel=1e-12)
    assert f.window_mean("btc_usd", JAN1, JAN3) == 50_000.0
    assert f.window_sum("blocks_per_day", JAN1, JAN3) == 438.0
    assert f.window_mean("difficulty", JAN1, JAN3) == pytest.approx(7 * D0 / 3, rel=1e-12)
    # block-weighted: (144 D0 + 144 * 2 D0 + 150 * 4 D0) / 438, not the daily mean 7 D0 / 3
    assert f.window_sum("difficulty_x_blocks", JAN1, JAN3) == pytest.approx(1_032 * D0, rel=1e-12)
    assert f.window_mean("difficulty_per_block", JAN1, JAN3) == pytest.approx(1_032 * D0 / 438, rel=1e-12)


def test_history_rows_in_any_order_and_coinmetrics_names():
    text = history_csv([HISTORY_DAYS[2], HISTORY_DAYS[0], HISTORY_DAYS[1]])
    text = text.replace("date,price_usd", "time,PriceUSD", 1)
    f = load_realised_fixings(io.StringIO(text))
    assert (f.first, f.last) == (JAN1, JAN3)
    assert f.window_sum("hashprice_usd_per_ph_day", JAN1, JAN3) == pytest.approx(262_500.0, rel=1e-12)


def test_published_index_by_hand():
    f = load_realised_fixings(index_csv(["2026-01-03,45000,0.75", "2026-01-01,130000,3.25", "2026-01-02,87500,1.75"]))
    assert f.quantities == ("hashprice_usd_per_ph_day", "hashvalue_btc_per_ph_day")
    assert (f.first, f.last) == (JAN1, JAN3)
    assert f.window_sum("hashprice_usd_per_ph_day", JAN1, JAN3) == 262_500.0
    assert f.window_mean("hashvalue_btc_per_ph_day", JAN1, JAN2) == 2.5


def test_published_index_hashvalue_optional():
    f = load_realised_fixings(index_csv(["2026-01-01,40.5", "2026-01-02,41.5"], header="date,hashprice_usd_per_ph_day"))
    assert f.quantities == ("hashprice_usd_per_ph_day",)
    assert f.window_mean("hashprice_usd_per_ph_day", JAN1, JAN2) == 41.0


def test_quantity_the_file_lacks():
    f = load_realised_fixings(index_csv(["2026-01-01,40.5", "2026-01-02,41.5"], header="date,hashprice_usd_per_ph_day"))
    for quantity in ("btc_usd", "hashvalue_btc_per_ph_day", "difficulty_per_block"):
        with pytest.raises(InputError, match=f"{quantity} is not in the fixings file") as info:
            f.window_mean(quantity, JAN1, JAN2)
        assert info.value.field == "fixings"


def test_gap_names_missing_days_and_counts_them():
    rows = ["2026-01-01,40,1", "2026-01-02,41,1"] + [f"2026-01-{d:02d},42,1" for d in range(10, 32)]
    f = load_realised_fixings(index_csv(rows))
    assert f.window_mean("hashprice_usd_per_ph_day", JAN1, JAN2) == 40.5  # a window clear of the gap
    with pytest.raises(InputError) as info:
        f.window_sum("hashprice_usd_per_ph_day", JAN1, dt.date(2026, 1, 31))
    msg = str(info.value)
    assert info.value.field == "fixings"
    assert "no value on 7 day(s): 2026-01-03, 2026-01-04, 2026-01-05, 2026-01-06, 2026-01-07, ...;" in msg
    assert "2026-01-08" not in msg
    with pytest.raises(InputError, match=r"on 1 day\(s\): 2026-02-01; the file runs 2026-01-01..2026-01-31"):
        f.window_sum("hashprice_usd_per_ph_day", dt.date(2026, 1, 30), dt.date(2026, 2, 1))
    with pytest.raises(InputError, match="before its start"):
        f.window_sum("hashprice_usd_per_ph_day", JAN2, JAN1)


@pytest.mark.parametrize("kind", ["index", "history"])
def test_duplicate_date_names_line_and_date(kind):
    if kind == "index":
        text = index_csv(["2026-01-02,41,1", "2026-01-01,40,1", "2026-01-02,42,1"])
    else:
        text = io.StringIO(history_csv([HISTORY_DAYS[1], HISTORY_DAYS[0], HISTORY_DAYS[1]]))
    with pytest.raises(HistoryError, match="duplicate date") as info:
        load_realised_fixings(text)
    assert (info.value.line, info.value.date, info.value.column) == (4, "2026-01-02", "date")


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("nan", "finite and > 0"), ("", "finite and > 0"), ("-3", "finite and > 0"), ("0", "finite and > 0"),
     ("inf", "finite and > 0"), ("abc", "not a number")],
)
def test_bad_index_value_names_line_date_and_column(cell, reason):
    rows = ["2026-01-01,40,1", f"2026-01-02,41,{cell}", "2026-01-03,42,1"]
    with pytest.raises(HistoryError, match=reason) as info:
        load_realised_fixings(index_csv(rows))
    err = info.value
    assert (err.line, err.date, err.column) == (3, "2026-01-02", "hashvalue_btc_per_ph_day")
    assert "line 3, date 2026-01-02, column 'hashvalue_btc_per_ph_day'" in str(err)


def test_bad_history_value_names_its_original_line():
    days = [HISTORY_DAYS[2], HISTORY_DAYS[0], HISTORY_DAYS[1]]
    text = history_csv(days).replace(f"{50_000.0!r},", "-1.0,")  # 2026-01-02's price, on line 4
    with pytest.raises(HistoryError, match="finite and > 0") as info:
        load_realised_fixings(io.StringIO(text))
    assert (info.value.line, info.value.date, info.value.column) == (4, "2026-01-02", "price_usd")


def test_unparsable_date():
    with pytest.raises(HistoryError, match="unparsable date") as info:
        load_realised_fixings(index_csv(["2026-01-01,40,1", "Jan 2,41,1"]))
    assert (info.value.line, info.value.column) == (3, "date")


def test_unknown_column_is_named():
    with pytest.raises(HistoryError, match=r"unknown column\(s\) \['source'\]"):
        load_realised_fixings(index_csv(["2026-01-01,40,1,luxor"], header="date,hashprice_usd_per_ph_day,"
                                                                        "hashvalue_btc_per_ph_day,source"))


def test_missing_required_column():
    with pytest.raises(HistoryError, match=r"missing required column\(s\) \['date'\]"):
        load_realised_fixings(index_csv(["2026-01-01,40"], header="day,hashprice_usd_per_ph_day"))
    with pytest.raises(HistoryError, match=r"missing required column\(s\) \['fees_btc'\]"):
        load_realised_fixings(io.StringIO(history_csv().replace("fees_btc", "fee")))
    with pytest.raises(HistoryError, match="neither a daily network history .* nor a published index"):
        load_realised_fixings(index_csv(["2026-01-01,40"], header="date,hashprice"))


def test_no_rows():
    with pytest.raises(HistoryError, match="no rows"):
        load_realised_fixings(index_csv([]))


@needs_data
def test_real_history_month_mean_is_the_index_mean():
    f = load_realised_fixings(DAILY_CSV)
    index = hashprice_history(load_network_history(DAILY_CSV))
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    month = index.loc[pd.Timestamp(start):pd.Timestamp(end), "hashprice_usd_per_ph_day"]
    assert len(month) == 31
    assert f.window_mean("hashprice_usd_per_ph_day", start, end) == pytest.approx(month.mean(), rel=1e-12)
