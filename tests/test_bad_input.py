"""Bad input never crashes and never lies: files, outputs, interrupts and numerics.

Every error is one line on stderr naming the field or file, exit status 2, and leaves the disk
as it was; a run writes all of its outputs or none; Ctrl-C is exit 130, SIGTERM 143; no NaN or
infinity leaves with exit status 0, and a standard error is reported only where it can be trusted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from cli_run import run_main
from real_data import DAILY_CSV, needs_data

from curves import toml_io
from curves.market import Market
from curves.periods import monthly_periods
from curves.toml_io import InputError, commit_files, write_atomic
from engine.calibration import physical as calibration
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.mc.simulation import Simulation
from engine.pricing.curve_builder import build_curve, day_windows

ROOT = Path(__file__).resolve().parents[1]
PORTFOLIO = ROOT / "examples" / "portfolio.toml"
PATHS = "512"
GOOD_TRADE = {"id": "good", "type": "hashprice_forward", "start": dt.date(2026, 3, 1),
              "end": dt.date(2026, 3, 31), "strike": 40.0, "currency": "USD", "size_phs": 5.0, "side": "buy"}


def one_line_error(res, *names: str) -> str:
    assert res.exception is None, res.trace
    assert res.code == 2, (res.code, res.stdout[-300:], res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines[0]
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    assert res.stdout == ""
    return lines[0]


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def write_toml(path: Path, doc: dict) -> Path:
    path.write_text(tomli_w.dumps(doc))
    return path


@pytest.fixture
def dirs(tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    return inputs, outputs


# ---- input files -------------------------------------------------------------------------------
def _bad_files(d: Path) -> dict:
    (d / "folder.toml").mkdir()
    (d / "folder.csv").mkdir()
    (d / "binary.toml").write_bytes(b"\xff\xfe\x00 garbage")
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00 garbage\n1,2\n")
    (d / "empty.toml").write_bytes(b"")
    (d / "empty.csv").write_bytes(b"")
    (d / "broken.toml").write_text('[[trade]]\nid = "x"\nstrike = [\n')
    (d / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    (d / "header.csv").write_text("date,price_usd\n")
    return {
        "missing": (d / "nope.toml", "file not found"),
        "folder": (d / "folder.toml", "is a directory"),
        "binary": (d / "binary.toml", "not UTF-8"),
        "empty": (d / "empty.toml", "empty file"),
        "broken": (d / "broken.toml", "invalid TOML"),
        "deep": (d / "deep.toml", "nested too deeply"),
    }


@pytest.mark.parametrize("kind", ["missing", "folder", "binary", "empty", "broken", "deep"])
@pytest.mark.parametrize("option", ["--market", "--model", "--shift", "portfolio", "quotes"])
def test_bad_toml_input_is_one_line_naming_option_and_file(dirs, kind, option):
    inputs, outputs = dirs
    path, reason = _bad_files(inputs)[kind]
    if option == "portfolio":
        argv = ["price", path, "--paths", PATHS]
    elif option == "quotes":
        argv = ["calibrate-quotes", path, "--paths", PATHS]
    else:
        argv = ["curve", "--months", "1", "--paths", PATHS, option, path]
    before = tree(outputs)
    res = run_main([*argv, "--json"] if option != "quotes" else argv)
    one_line_error(res, option.lstrip("-"), path, reason)
    assert tree(outputs) == before


@pytest.mark.parametrize(("name", "reason"), [
    ("nope.csv", "file not found"), ("folder.csv", "is a directory"), ("binary.csv", "not UTF-8"),
    ("empty.csv", "empty file"), ("header.csv", "missing required column")])
@pytest.mark.parametrize("command", ["history", "calibrate", "backtest", "history-epochs", "backtest-epochs"])
def test_bad_csv_input_is_one_line_naming_option_and_file(tmp_path, command, name, reason):
    _bad_files(tmp_path)
    bad = tmp_path / name
    good = tmp_path / "good.csv"
    good.write_text("date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks\n"
                    "2024-05-01,58141.78,600000000,88104191118793.16,41.3,450.0,144\n")
    argv = {
        "history": ["history", bad], "calibrate": ["calibrate", bad, "--out", tmp_path / "m.toml"],
        "backtest": ["backtest", bad, "--paths", PATHS],
        "history-epochs": ["history", good, "--epochs", bad],
        "backtest-epochs": ["backtest", good, "--epochs", bad, "--paths", PATHS],
    }[command]
    field = "epochs" if command.endswith("epochs") else "data"
    if name == "header.csv" and field == "epochs":
        reason = "missing required column"
    res = run_main(argv)
    one_line_error(res, f"{field}:", bad, reason)
    assert not (tmp_path / "m.toml").exists()


def test_history_error_names_file_line_and_column(tmp_path):
    data = tmp_path / "h.csv"
    data.write_text("date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks\n"
                    "2024-05-01,58141.78,600000000,88104191118793.16,41.3,450.0,144\n"
                    "2024-05-02,abc,600000000,88104191118793.16,41.3,450.0,144\n")
    line = one_line_error(run_main(["history", data]), "data:", data, "line 3", "price_usd")
    assert "np.float64" not in line


def test_history_integer_beyond_int64_is_one_line_without_warnings(tmp_path):
    data = tmp_path / "h.csv"
    data.write_text("date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks,height_end\n"
                    "2024-05-01,58141.78,600000000,88104191118793.16,41.3,450.0,144,99999999999999999999\n")
    one_line_error(run_main(["history", data]), "data:", "height_end", "below 2^53")


def test_history_value_that_would_overflow_the_index_is_refused(tmp_path):
    data = tmp_path / "h.csv"
    data.write_text("date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks\n"
                    "2024-05-01,1e308,600000000,88104191118793.16,41.3,450.0,144\n")
    one_line_error(run_main(["history", data, "--json"]), "data:", "price_usd", "below 1e+30")


# ---- outputs: checked before any work, written all together or not at all ----------------------
@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts: output checks come first."""
    def boom(*_a, **_k):
        raise AssertionError("the simulation ran before the output check")
    monkeypatch.setattr(Simulation, "run", boom)


@pytest.mark.parametrize("kind", ["folder", "proc", "parent-file", "long", "suffix", "nul"])
def test_unwritable_output_fails_before_simulating(dirs, no_simulation, kind):
    _, outputs = dirs
    (outputs / "folder.csv").mkdir()
    (outputs / "afile").write_text("x")
    bad = {"folder": outputs / "folder.csv", "proc": Path("/proc/curve.csv"),
           "parent-file": outputs / "afile" / "c.csv", "long": outputs / ("x" * 300 + ".csv"),
           "suffix": outputs / "c.xlsx", "nul": str(outputs / "c\0.csv")}[kind]
    before = tree(outputs)
    res = run_main(["curve", "--months", "1", "--paths", PATHS, "--out", bad])
    one_line_error(res, "out:")
    assert tree(outputs) == before


def test_plot_unwritable_leaves_no_table(dirs, no_simulation):
    _, outputs = dirs
    res = run_main(["curve", "--months", "1", "--paths", PATHS, "--out", outputs / "o.csv",
                    "--plot", "/proc/o.png"])
    one_line_error(res, "plot:", "/proc/o.png")
    assert list(outputs.iterdir()) == []


def test_outputs_are_written_together_in_new_folders(dirs):
    _, outputs = dirs
    out, plot = outputs / "a" / "b" / "c.csv", outputs / "p" / "c.png"
    res = run_main(["curve", "--months", "1", "--paths", PATHS, "--out", out, "--plot", plot, "--json"])
    assert res.code == 0, res.stderr + res.trace
    assert out.is_file() and plot.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(res.stdout)["paths"] == 512
    names = [p.name for p in outputs.rglob("*")]
    assert not [n for n in names if n.endswith((".tmp", ".bak"))], names


def test_failure_while_writing_removes_every_output_and_created_folder(dirs, monkeypatch):
    """The second file fails at its rename: the first is rolled back (an old file restored, a new
    one removed), the folders the run made are removed, no temporary file is left."""
    _, outputs = dirs
    old = outputs / "c.csv"
    old.write_text("OLD\n")
    plot = outputs / "new" / "deeper" / "c.png"
    real_replace = os.replace

    def failing_replace(src, dst, *a, **k):
        if str(dst).endswith(".png"):
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(toml_io.os, "replace", failing_replace)
    res = run_main(["curve", "--months", "1", "--paths", PATHS, "--out", old, "--plot", plot, "--json"])
    line = one_line_error(res, "plot:", "no space left")
    assert "nothing written" in line
    assert old.read_text() == "OLD\n"
    assert sorted(p.name for p in outputs.rglob("*")) == ["c.csv"]


def test_commit_rolls_back_when_stdout_fails(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "sub" / "b.json"
    a.write_text("old")

    def finish():
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        commit_files([(a, b"new a"), (b, b"new b")], finish)
    assert a.read_text() == "old"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json"]


_FSIZE_SCRIPT = """
import resource, signal, sys
from curves.toml_io import write_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    write_atomic(sys.argv[1], b"N" * 100_000)
except OSError as exc:
    print("failed", exc.errno)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_write_atomic_failure_mid_write_keeps_the_old_file(tmp_path):
    """The disk fills (a file size limit) after 4 KiB of a 100 KB write: the old content must
    survive whole, and no temporary file may be left (a write in place would leave 4 KiB of N)."""
    target = tmp_path / "result.json"
    target.write_text("OLD CONTENT")
    proc = subprocess.run([sys.executable, "-c", _FSIZE_SCRIPT, str(target)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.startswith("failed"), proc.stdout + proc.stderr
    assert target.read_text() == "OLD CONTENT"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_atomic_replaces_whole_file(tmp_path):
    target = tmp_path / "x.toml"
    target.write_text("OLD")
    write_atomic(target, b"NEW")
    assert target.read_text() == "NEW"
    assert [p.name for p in tmp_path.iterdir()] == ["x.toml"]


# ---- interrupts --------------------------------------------------------------------------------
def _signal_during_kernel(sig, sim: Simulation):
    """Send ``sig`` to this process while the main thread is inside the compiled kernel (the
    second chunk); return the exception the run raised and the chunks it finished."""
    seen = []

    def on_chunk(start, _wv):
        seen.append(start)
        if len(seen) == 1:
            threading.Timer(0.3, os.kill, (os.getpid(), sig)).start()

    with pytest.raises(BaseException) as info:  # noqa: B017 - the type is the point of the test
        sim.run([(0, sim.n_days - 1)], on_chunk=on_chunk)
    return info.value, seen


def test_ctrl_c_inside_the_kernel_is_a_clean_keyboard_interrupt():
    sim = Simulation(Market.default(), ModelParams.default(), n_days=1500, n_paths=40 * 8192, seed=1,
                     chunk_paths=8192)
    exc, seen = _signal_during_kernel(signal.SIGINT, sim)
    assert type(exc) is KeyboardInterrupt, repr(exc)  # not SystemError from the dispatcher
    assert len(seen) < 40  # stopped between chunks, long before the end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


_SIGNAL_SCRIPT = """
import os, signal, sys, threading
import engine.mc.kernel as K
from engine.app.cli import main

kernel, sig = K.simulate_chunk, int(sys.argv[3])

def first_chunk(*args):  # the signal arrives while the main thread is inside the compiled kernel
    if not getattr(first_chunk, "armed", False):
        first_chunk.armed = True
        threading.Timer(0.2, os.kill, (os.getpid(), sig)).start()
    return kernel(*args)

K.simulate_chunk = first_chunk
main(["curve", "--paths", "1000000", "--out", sys.argv[1], "--plot", sys.argv[2]])
"""


@pytest.mark.parametrize(("sig", "code", "message"), [(signal.SIGINT, 130, "error: interrupted"),
                                                      (signal.SIGTERM, 143, "error: terminated")])
def test_cli_signal_during_simulation(tmp_path, sig, code, message):
    """Ctrl-C (SIGINT) and SIGTERM inside the kernel stop the run with one line and their exit
    status; no output, temporary file or created folder is left."""
    out = tmp_path / "new" / "curve.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_SCRIPT, str(out), str(tmp_path / "c.png"), str(int(sig))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip() == message, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


# ---- numerics ----------------------------------------------------------------------------------
def test_price_non_finite_trade_gets_its_error_rest_priced(tmp_path):
    pf = write_toml(tmp_path / "pf.toml", {"trade": [
        GOOD_TRADE, {**GOOD_TRADE, "id": "huge", "size_phs": 1e308},
        {**GOOD_TRADE, "id": "list-type", "type": ["hashprice_forward"]}]})
    res = run_main(["price", pf, "--paths", PATHS, "--json"])
    assert res.code == 0, res.stderr + res.trace
    doc = json.loads(res.stdout)
    by_id = {t["id"]: t for t in doc["trades"]}
    assert by_id["good"]["error"] is None and math.isfinite(by_id["good"]["pv_usd"])
    assert by_id["huge"]["error"].startswith("size_phs: 1e+308 is outside the plausible range")  # the schema
    assert by_id["huge"]["pv_usd"] is None
    assert by_id["list-type"]["error"].startswith("type: must be text naming the trade type")
    assert doc["total_pv_usd"] == by_id["good"]["pv_usd"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"difficulty": 1e-300}, "difficulty"),
    ({"asof": dt.date(1800, 1, 1)}, "asof"),
    ({"asof": dt.date(2300, 1, 1), "btc_vols": []}, "asof"),
    ({"asof": dt.date(2199, 1, 1), "btc_vols": []}, "height"),  # a 2026 network state in 2199: refused first
    ({"height": 10**30}, "height"),
    ({"btc_vol": 1e3, "btc_vols": []}, "btc_vol"),
])
def test_market_outside_the_engine_is_one_line(tmp_path, changes, field):
    table = {**Market.default().to_dict(), **changes}
    if not table.get("btc_vols"):
        table.pop("btc_vols", None)
    mkt = write_toml(tmp_path / "m.toml", table)
    res = run_main(["curve", "--paths", PATHS, "--market", mkt, "--json"])
    one_line_error(res, f"{field}:")


@pytest.mark.parametrize(("changes", "field"), [
    ({"marginal_cost_decline_per_year": -1e4}, "marginal_cost_decline_per_year"),
    ({"btc_jump_mean_log": 1e3}, "btc_jump_mean_log"),
    ({"btc_jump_std_log": 100.0}, "btc_jump_std_log"),
    ({"fee_spike_mean_log": 500.0}, "fee_spike_mean_log"),
    ({"hashrate_growth_per_year": 1e6}, "hashrate_growth_per_year"),
    ({"marginal_cost_usd_per_ph_day": 1e300}, "marginal_cost_usd_per_ph_day"),
    ({"marginal_cost_reference_date": dt.datetime(2026, 1, 31, 12, 0)}, "marginal_cost_reference_date"),
])
def test_model_outside_the_engine_is_one_line(tmp_path, changes, field):
    mdl = write_toml(tmp_path / "model.toml", {**ModelParams.default().to_dict(), **changes})
    res = run_main(["curve", "--months", "2", "--paths", PATHS, "--model", mdl])
    one_line_error(res, f"{field}:")


@pytest.mark.parametrize(("args", "field"), [
    (("--height", "100000000000000000000"), "height"),
    (("--height", "1e30"), "height"),
    (("--difficulty", "1e-300", "--height", "1"), "hashvalue_btc_per_ph_day"),
])
def test_spot_extremes_are_one_line(args, field):
    base = ["spot", "--price-usd", "1e5"]
    if "--difficulty" not in args:
        base += ["--difficulty", "1e14"]
    one_line_error(run_main([*base, *args, "--json"]), f"{field}:")


@pytest.mark.parametrize("paths", ["3", "511", "4294967296", "-1"])
def test_paths_bounds(paths, no_simulation):
    one_line_error(run_main(["curve", "--months", "1", "--paths", paths]), "paths:")


def _market_file(tmp_path, **changes) -> Path:
    table = {**Market.default().to_dict(), **changes}
    table.pop("btc_vols", None)  # btc_vol then sets every vol
    return write_toml(tmp_path / "m.toml", table)


def test_degenerate_sample_is_refused_not_reported(tmp_path):
    """BTC vol 50: the paths would collapse to 0 and the sample say 0.0 +/- 0.0; the market's
    schema refuses the vol first (the stderr guard below catches what passes the schema)."""
    res = run_main(["curve", "--months", "3", "--paths", "20000", "--market", _market_file(tmp_path, btc_vol=50.0),
                    "--json"])
    one_line_error(res, "btc_vol:", "plausible range")


def test_heavy_tailed_sample_is_refused(tmp_path):
    """BTC vol 5 over 18 months: the stderr would understate the seed-to-seed spread tenfold."""
    res = run_main(["curve", "--months", "18", "--paths", "20000", "--market", _market_file(tmp_path, btc_vol=5.0),
                    "--json"])
    one_line_error(res, "paths:", "no trustworthy standard error")


def test_ordinary_curve_is_not_refused():
    for seed in ("1", "2", "3"):
        res = run_main(["curve", "--months", "6", "--paths", "4000", "--seed", seed, "--json"])
        assert res.code == 0, res.stderr


def test_deterministic_figures_keep_their_zero_stderr():
    """Frozen hashrate and fees: hashvalue is deterministic; its stderr (0 up to the rounding of
    the sums) stands and is not taken for a degenerate sample."""
    m = Market.default().with_(hashrate_log_sd=0.0)
    model = ModelParams(hashrate_vol_annual=0.0, hashrate_growth_per_year=0.0, hashrate_feedback_per_year=0.0,
                        fee_vol_annual=0.0, fee_long_run_btc_per_block=m.fee_btc_per_block,
                        fee_mean_reversion_per_year=5.0)
    periods = monthly_periods(m.asof, 2)
    sim = Simulation(m, model, n_days=(periods[-1].end - m.asof).days, n_paths=2000, seed=3)
    run = sim.run(day_windows(sim, periods))
    assert np.all(run.window_stderr("hashvalue_btc_per_ph_day") <= 1e-6 * run.window_mean("hashvalue_btc_per_ph_day"))
    assert np.all(run.window_moments.central[1][:, 1] <= 1e-20)  # no spread about the mean
    assert list(run.window_problems("hashvalue_btc_per_ph_day")) == [None, None]
    assert list(run.window_problems("hashprice_usd_per_ph_day")) == [None, None]


def test_json_stderrs_are_the_curve_stderrs(tmp_path):
    """Each --json and --out stderr is the curve's own value for that quantity (values, not keys)."""
    out = tmp_path / "c.json"
    res = run_main(["curve", "--months", "3", "--paths", "2000", "--seed", "5", "--out", out, "--json"])
    assert res.code == 0, res.stderr
    c = build_curve(Market.default(), ModelParams.default(), months=3, paths=2000, seed=5)
    for doc in (json.loads(res.stdout), json.loads(out.read_text())):
        for i, m in enumerate(doc["months"]):
            assert m["hashprice_usd_per_ph_day"] == c.hashprice_usd_per_ph_day[i]
            assert m["hashprice_stderr"] == c.hashprice_stderr[i]
            assert m["hashvalue_btc_per_ph_day"] == c.hashvalue_btc_per_ph_day[i]
            assert m["hashvalue_stderr"] == c.hashvalue_stderr[i]
            assert m["hashvalue_stderr"] != m["hashprice_stderr"]
            assert m["difficulty_mean"] == c.difficulty_mean[i]


# ---- the sample-quality statistics --------------------------------------------------------------
def _pair_means(x):
    return 0.5 * (x[0::2] + x[1::2])


def test_pair_moments_kurtosis_matches_direct_computation():
    rng = np.random.default_rng(4)
    x = rng.lognormal(0.0, 1.0, size=(6000, 3))
    pm = PairMoments((3,), block_pairs=256)
    for s in range(0, 6000, 1024):
        pm.add(x[s:s + 1024])
    p = _pair_means(x)
    d = p - p.mean(axis=0)
    expected = len(p) * (d**4).sum(axis=0) / ((d**2).sum(axis=0)) ** 2
    np.testing.assert_allclose(pm.kurtosis(), expected, rtol=1e-10)
    np.testing.assert_allclose(pm.central[0], p.mean(axis=0), rtol=1e-12)


def test_pair_moments_flag_a_sample_dominated_by_one_path():
    x = np.ones((2000, 1))
    x[0] = 1e6
    pm = PairMoments((1,), block_pairs=256)
    pm.add(x)
    assert "dominated by a few paths" in pm.problems()[0]
    y = np.random.default_rng(0).normal(10.0, 1.0, size=(2000, 1))
    pm = PairMoments((1,), block_pairs=256)
    pm.add(y)
    assert pm.problems()[0] is None


def test_pair_moments_deterministic_sample_keeps_its_zero_stderr():
    pm = PairMoments((1,), block_pairs=256)
    pm.add(np.full((2000, 1), 3.0))
    assert pm.stderr()[0] == 0.0
    assert pm.problems()[0] is None


def test_pair_moments_control_far_from_its_mean_is_flagged():
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 1.0, size=(4000, 1))
    pm = PairMoments((1,), block_pairs=256)
    pm.add(x, c=x)
    assert pm.problems(control_mean=np.array([10.0]))[0] is None
    assert "BTC" in pm.problems(control_mean=np.array([11.0]))[0]


def test_sample_quality_statistics_do_not_depend_on_chunking():
    def run(chunk_paths, threads):
        m = Market.default()
        periods = monthly_periods(m.asof, 2)
        sim = Simulation(m, ModelParams.default(), n_days=(periods[-1].end - m.asof).days, n_paths=6000, seed=7,
                         chunk_paths=chunk_paths, threads=threads)
        return sim.run(day_windows(sim, periods)).window_moments

    a, b = run(65_536, 1), run(1024, 2)
    assert np.array_equal(a.sums, b.sums)
    assert np.array_equal(a.central, b.central)


# ---- calibration confidence intervals ------------------------------------------------------------
def test_log_scale_intervals_never_overflow():
    lo, hi = calibration._ci_log(0.5, 1e6)
    assert lo >= 0 and hi == calibration.CI_UNBOUNDED
    lo, hi, unbounded = calibration._ci_exp(math.log(30.0), 4132.0)
    assert unbounded and lo == 0.0 and hi == calibration.CI_UNBOUNDED
    lo, hi, unbounded = calibration._ci_exp(math.log(30.0), 0.1)
    assert not unbounded and lo < 30.0 < hi
    assert calibration._ci(0.0, 1e308) == (-calibration.CI_UNBOUNDED, calibration.CI_UNBOUNDED)


@needs_data
def test_calibrate_on_short_recent_history_has_finite_output(tmp_path):
    """The last 1,200 days (2022-10-20 on) leave the marginal cost unidentified: the log-scale CI
    used to overflow; now it is the flagged wide interval."""
    lines = DAILY_CSV.read_text().splitlines()
    data = tmp_path / "recent.csv"
    data.write_text("\n".join([lines[0], *lines[-1200:]]) + "\n")
    res = run_main(["calibrate", data, "--asof", "2026-01-01", "--out", tmp_path / "m.toml", "--json"])
    assert res.code == 0, res.stderr + res.trace
    doc = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"non-finite {c}"))
    row = {p["parameter"]: p for p in doc["parameters"]}["marginal_cost_usd_per_ph_day"]
    assert row["ci_high"] == calibration.CI_UNBOUNDED
    assert "CI unbounded" in (tmp_path / "m.toml").read_text()


def test_input_error_keeps_its_field():
    exc = InputError("size_phs", "must be > 0")
    assert str(exc) == "size_phs: must be > 0"
