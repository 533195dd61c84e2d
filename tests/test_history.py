"""Network-history loader, hashprice index, hash ribbons and epoch changes."""


import numpy as np
import pandas as pd
import pytest
from real_data import DAILY_CSV, EPOCHS_CSV, needs_data

from curves.protocol import hashvalue_btc_per_ph_day, hashvalue_btc_per_ph_day_array
from engine.app.plots import plot_history
from engine.data.index import (
    epoch_difficulty_changes,
    hash_ribbons,
    hashprice_history,
    ribbon_signals,
)
from engine.data.load import (
    HistoryError,
    difficulty_from_bits,
    find_gaps,
    load_difficulty_epochs,
    load_network_history,
)

HEADER = "date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks,height_end"
ROWS = [
    "2024-05-01,58141.77728,578118170.776,88104191118793.16,37.91687325,412.5,132,841708",
    "2024-05-02,59123.0,600000000.0,88104191118793.16,30.0,450.0,144,841852",
    "2024-05-03,60000.0,590000000.0,88104191118793.16,25.0,443.75,142,841994",
]


def write_csv(tmp_path, rows, header=HEADER, name="h.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def with_cell(row: str, column: str, value: str) -> str:
    cells = row.split(",")
    cells[HEADER.split(",").index(column)] = value
    return ",".join(cells)


def test_loads_good_file(tmp_path):
    df = load_network_history(write_csv(tmp_path, ROWS))
    assert list(df.index.strftime("%Y-%m-%d")) == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert df.index.name == "date"
    assert df["blocks"].dtype == np.int64
    assert df.attrs["gaps"] == []


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("price_usd", "", "finite and > 0"),
        ("price_usd", "-5", "finite and > 0"),
        ("hashrate_ths", "0", "finite and > 0"),
        ("difficulty", "nan", "finite and > 0"),
        ("fees_btc", "-0.1", "finite and >= 0"),
        ("subsidy_btc", "0", "finite and > 0"),
        ("blocks", "12.5", "whole number"),
        ("price_usd", "abc", "not a number"),
    ],
)
def test_bad_value_names_line_date_and_column(tmp_path, column, value, reason):
    rows = [ROWS[0], with_cell(ROWS[1], column, value), ROWS[2]]
    with pytest.raises(HistoryError, match=reason) as info:
        load_network_history(write_csv(tmp_path, rows))
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.line, err.date, err.column) == (3, "2024-05-02", column)
    assert "line 3" in str(err) and "2024-05-02" in str(err) and repr(column) in str(err)


def test_zero_fees_allowed(tmp_path):
    df = load_network_history(write_csv(tmp_path, [with_cell(ROWS[0], "fees_btc", "0")]))
    assert df["fees_btc"].iloc[0] == 0.0


def test_duplicate_dates(tmp_path):
    rows = [ROWS[0], ROWS[1], with_cell(ROWS[1], "height_end", "841852")]
    with pytest.raises(HistoryError, match="duplicate date") as info:
        load_network_history(write_csv(tmp_path, rows))
    assert (info.value.line, info.value.date) == (4, "2024-05-02")


def test_unsorted_dates(tmp_path):
    with pytest.raises(HistoryError, match="not sorted") as info:
        load_network_history(write_csv(tmp_path, [ROWS[1], ROWS[0]]))
    assert (info.value.line, info.value.date, info.value.column) == (3, "2024-05-01", "date")


def test_unparsable_date(tmp_path):
    with pytest.raises(HistoryError, match="unparsable date") as info:
        load_network_history(write_csv(tmp_path, [ROWS[0], with_cell(ROWS[1], "date", "May")]))
    assert (info.value.line, info.value.column) == (3, "date")


def test_missing_column(tmp_path):
    header = HEADER.replace("fees_btc", "fee")
    with pytest.raises(HistoryError, match="missing required column.*fees_btc"):
        load_network_history(write_csv(tmp_path, ROWS, header=header))


def test_height_end_must_follow_blocks(tmp_path):
    rows = [ROWS[0], with_cell(ROWS[1], "height_end", "841853")]
    with pytest.raises(HistoryError, match="advances by 145 but blocks is 144") as info:
        load_network_history(write_csv(tmp_path, rows))
    assert info.value.column == "height_end"


def test_gaps_reported_not_raised(tmp_path):
    rows = [ROWS[0], with_cell(ROWS[2], "date", "2024-05-05").replace(",841994", ",842200")]
    rows.append(with_cell(ROWS[2], "date", "2024-05-06").replace(",841994", ",842342"))
    df = load_network_history(write_csv(tmp_path, rows))
    expected = [(pd.Timestamp("2024-05-02"), pd.Timestamp("2024-05-04"))]
    assert df.attrs["gaps"] == expected
    assert find_gaps(df) == expected
    assert find_gaps(df.reset_index()) == expected


def test_coinmetrics_columns_are_mapped(tmp_path):
    header = "time,PriceUSD,HashRate,DiffMean,FeeTotNtv,IssTotNtv,BlkCnt,AdrActCnt"
    rows = [
        "2024-05-01T00:00:00.000000000Z,58141.77728,578118170.776,88104191118793.16,"
        "37.91687325,412.5,132,1",
        "2024-05-02T00:00:00.000000000Z,59123.0,600000000.0,88104191118793.16,30.0,450.0,144,2",
    ]
    df = load_network_history(write_csv(tmp_path, rows, header=header))
    ours = load_network_history(write_csv(tmp_path, ROWS[:2], name="ours.csv"))
    cols = ["price_usd", "hashrate_ths", "difficulty", "fees_btc", "subsidy_btc", "blocks"]
    pd.testing.assert_frame_equal(df[cols], ours[cols])
    assert "AdrActCnt" in df.columns


def test_coinmetrics_trim_skips_early_rows_without_price(tmp_path):
    header = "time,PriceUSD,HashRate,DiffMean,FeeTotNtv,IssTotNtv,BlkCnt"
    rows = ["2010-07-17,,1e-3,1.0,0.0,7200,144", "2010-07-18,0.0858,1e-3,1.0,0.0,7200,144"]
    with pytest.raises(HistoryError, match="line 2, date 2010-07-17, column 'price_usd'"):
        load_network_history(write_csv(tmp_path, rows, header=header))
    df = load_network_history(write_csv(tmp_path, rows, header=header), start="2010-07-18")
    assert len(df) == 1


def test_array_hashvalue_matches_njit_scalar():
    got = hashvalue_btc_per_ph_day_array(np.array([1e14, 8.8e13]), 3.125, np.array([0.0, 0.3]))
    want = [hashvalue_btc_per_ph_day(1e14, 3.125, 0.0),
            hashvalue_btc_per_ph_day(8.8e13, 3.125, 0.3)]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert round(got[0] * 100_000.0, 2) == 62.86  # DESIGN.md check value


def test_index_on_synthetic_rows_and_luck(tmp_path):
    df = load_network_history(write_csv(tmp_path, ROWS))
    hp = hashprice_history(df)
    assert hp.index.equals(df.index)
    row = df.iloc[1]  # hashrate here is not the block-count estimate: naive carries luck
    reward = (row.fees_btc + row.subsidy_btc) / row.blocks
    index = 86400e15 * reward / (row.difficulty * 2**32) * row.price_usd
    assert hp["hashprice_usd_per_ph_day"].iloc[1] == pytest.approx(index, rel=1e-12)
    naive = (row.fees_btc + row.subsidy_btc) * row.price_usd / (row.hashrate_ths / 1000)
    assert hp["naive_hashprice_usd_per_ph_day"].iloc[1] == pytest.approx(naive, rel=1e-12)
    assert hp["fee_share"].iloc[1] == pytest.approx(30.0 / 480.0)
    assert hp["hashrate_ehs"].iloc[1] == pytest.approx(600.0)


def ribbon_frame(values_ehs, start="2020-01-01"):
    days = pd.date_range(start, periods=len(values_ehs), freq="D", name="date")
    return pd.DataFrame({"hashrate_ths": np.asarray(values_ehs, float) * 1e6}, index=days)


def test_ribbons_known_crossings():
    # 100 EH/s for days 0-99, 50 for days 100-119, 210 for days 120-169 (no exact ties).
    series = np.r_[np.full(100, 100.0), np.full(20, 50.0), np.full(50, 210.0)]
    rb = hash_ribbons(ribbon_frame(series), short_days=30, long_days=60)
    assert np.isnan(rb["sma_long_ehs"].iloc[58]) and not np.isnan(rb["sma_long_ehs"].iloc[59])
    assert rb["sma_short_ehs"].iloc[100] == pytest.approx((29 * 100 + 50) / 30)
    # Day 100: short mean drops by 50/30, long by 50/60, so it crosses below. For day t in
    # 120..129 with k = t - 119 days of 210: short = ((129-t)*100 + 1000 + 210k)/30 and
    # long = ((159-t)*100 + 1000 + 210k)/60, so short - long = (110t - 14090)/60 > 0 from
    # t = 129 on.
    start = pd.Timestamp("2020-01-01")
    events = ribbon_signals(rb)
    assert list(events["signal"]) == ["capitulation_start", "recovery"]
    assert list(events["date"]) == [start + pd.Timedelta(days=100),
                                    start + pd.Timedelta(days=129)]
    assert rb["capitulation"].iloc[100:129].all() and not rb["capitulation"].iloc[129:].any()
    assert rb["capitulation_start"].sum() == 1 and rb["recovery"].sum() == 1


def test_ribbons_gap_blanks_sma():
    frame = ribbon_frame(np.full(100, 10.0)).drop(pd.Timestamp("2020-03-01"))
    rb = hash_ribbons(frame, short_days=3, long_days=5)
    assert len(rb) == 100 and np.isnan(rb.loc["2020-03-01", "hashrate_ehs"])
    assert rb.loc["2020-03-03", "sma_short_ehs"] != rb.loc["2020-03-03", "sma_short_ehs"]
    assert rb.loc["2020-03-04", "sma_short_ehs"] == 10.0
    assert ribbon_signals(rb).empty


def test_difficulty_from_bits():
    assert difficulty_from_bits("0x1d00ffff") == 1.0
    assert difficulty_from_bits("0x1d00d86a") == pytest.approx(1.1828995343128408, rel=1e-15)


@needs_data
def test_real_index_2024_05_01_and_pre_halving():
    df = load_network_history(DAILY_CSV)
    hp = hashprice_history(df)
    raw = pd.read_csv(DAILY_CSV, index_col="date")
    for day, low, high in [("2024-05-01", 40.0, 50.0), ("2024-04-01", 90.0, 130.0)]:
        r = raw.loc[day]
        reward_btc = (r["subsidy_btc"] + r["fees_btc"]) / r["blocks"]
        expected = 86400e15 * reward_btc / (r["difficulty"] * 2**32) * r["price_usd"]
        got = hp.loc[day, "hashprice_usd_per_ph_day"]
        assert got == pytest.approx(expected, rel=1e-12)
        assert low < got < high
    assert hp.loc["2024-04-01", "subsidy_btc_per_block"] == 6.25
    assert hp.loc["2024-05-01", "subsidy_btc_per_block"] == 3.125


@needs_data
def test_real_naive_equals_index_and_no_gaps():
    df = load_network_history(DAILY_CSV)
    assert df.attrs["gaps"] == [] and len(df) == 3684
    hp = hashprice_history(df)
    rel = hp["naive_hashprice_usd_per_ph_day"] / hp["hashprice_usd_per_ph_day"] - 1.0
    assert rel.abs().max() < 1e-6
    assert ((hp["fee_share"] > 0) & (hp["fee_share"] < 1)).all()


@needs_data
def test_real_epochs_changes_and_durations():
    epochs = load_difficulty_epochs(EPOCHS_CSV)
    assert len(epochs) == 474 and (np.diff(epochs["height"]) == 2016).all()
    assert epochs["date_estimated"].sum() == 25
    ch = epoch_difficulty_changes(epochs)  # raises if the file's change_pct disagrees
    modern = ch[ch["difficulty"] > 1e9]
    np.testing.assert_allclose(modern["change_pct"], modern["change_pct_file"], atol=5.1e-5)
    known = ch["duration_days"].dropna()
    assert 440 < len(known) < 474 and known.median() == pytest.approx(13.4, abs=0.3)
    # Recent exact epochs: the retarget rule's implied span matches the measured one.
    recent = ch[(ch["height"] >= 911_232) & ch["duration_days"].notna()]
    np.testing.assert_allclose(recent["duration_days"], recent["duration_days_implied"],
                               atol=0.05)


def test_epoch_change_mismatch_raises(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(
        "height,date,timestamp_utc,difficulty,change_pct,bits,date_source\n"
        "0,2009-01-03,2009-01-03T18:15:05Z,1.0,,0x1d00ffff,g\n"
        "2016,2009-01-27,2009-01-27T13:38:51Z,1.0,5.0,0x1d00ffff,c\n"
    )
    epochs = load_difficulty_epochs(path)
    with pytest.raises(HistoryError, match="change_pct"):
        epoch_difficulty_changes(epochs)
    assert epoch_difficulty_changes(epochs, check=False)["duration_days"].iloc[0] > 23


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("4032,2009-02-01,,1.0,0.0,0x1d00ffff,e", None),
        ("4030,2009-02-01,,1.0,0.0,0x1d00ffff,e", "multiple of 2016"),
        ("4032,2009-01-20,,1.0,0.0,0x1d00ffff,e", "dates decrease"),
        ("4032,2009-02-01,2009-02-02T00:00:00Z,1.0,0.0,0x1d00ffff,e", "not on the row's date"),
        ("4032,2009-02-01,,2.0,100.0,0x1d00ffff,e", "implies difficulty"),
        ("4032,2009-02-01,,-1.0,0.0,0x1d00ffff,e", "finite and > 0"),
    ],
)
def test_epoch_validation(tmp_path, row, match):
    path = tmp_path / "e.csv"
    path.write_text(
        "height,date,timestamp_utc,difficulty,change_pct,bits,date_source\n"
        "0,2009-01-03,2009-01-03T18:15:05Z,1.0,,0x1d00ffff,g\n"
        "2016,2009-01-27,2009-01-27T13:38:51Z,1.0,0.0,0x1d00ffff,c\n" + row + "\n"
    )
    if match is None:
        assert load_difficulty_epochs(path)["date_estimated"].tolist() == [False, False, True]
        return
    with pytest.raises(HistoryError, match=match) as info:
        load_difficulty_epochs(path)
    assert info.value.line == 4


def test_plot_history_atomic(tmp_path):
    series = np.r_[np.full(100, 100.0), np.full(20, 50.0), np.full(50, 210.0)]
    frame = ribbon_frame(series)
    frame["hashprice_usd_per_ph_day"] = np.linspace(50.0, 100.0, len(frame))
    out = plot_history(frame, hash_ribbons(frame), tmp_path / "history.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]
