"""The ``hashprice`` command line: curves, spot economics, portfolio pricing, history tools.

Errors are one line on stderr naming the field or file and the reason, with exit status 2.
Inputs are checked before any work (files exist and are readable, outputs can be written); a
run's output files and its stdout are written together at the end, all or none (a failed or
interrupted run leaves no file, temporary file or folder it made). Ctrl-C exits with status 130,
SIGTERM with 143.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from curves import protocol
from curves.toml_io import InputError, current_stage, os_reason, staged_writes
from engine.mc.interrupts import Terminated, raise_terminated

if TYPE_CHECKING:  # imported where used: a command that needs neither starts faster
    from curves.market import Market
    from engine.mc.model import ModelParams

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Hashprice forward curves and hashrate derivatives pricing.")
out_console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)

MarketOpt = Annotated[Path | None, typer.Option("--market", help="Market snapshot TOML (default: embedded).")]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="Model parameters TOML (default: calibrated defaults).")]
PathsOpt = Annotated[int, typer.Option("--paths", help="Monte Carlo paths (rounded up to even: antithetic pairs).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same numbers.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the machine-readable result to stdout alone.")]
ShiftOpt = Annotated[Path | None, typer.Option(
    "--shift", help="Hashrate drift shift TOML from calibrate-quotes (market-implied).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="Numba threads (default: all cores).")]
TolOpt = Annotated[float | None, typer.Option(
    "--tolerance", help="Add paths until every figure's stderr is at most this fraction of its value.")]
AbsTolOpt = Annotated[float, typer.Option(
    "--abs-tolerance", help="With --tolerance: a stderr this small (in the figure's unit) is enough too.")]
MaxPathsOpt = Annotated[int, typer.Option("--max-paths", help="With --tolerance: the most paths to simulate.")]
TOLERANCE_CHUNK_PATHS = 16_384  # paths are added in steps of this many
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="Run the path chunks on the Dask scheduler at this address (e.g. tcp://host:8786).")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", help="Run the path chunks on a local Dask cluster of this many worker processes.")]
RngOpt = Annotated[str, typer.Option(
    "--rng", help="Daily shocks: 'counter' (pseudo-random) or 'sobol' (scrambled Sobol points, randomised QMC).")]
ScramblesOpt = Annotated[int, typer.Option(
    "--scrambles", help="With --rng sobol: independent scrambles, whose spread gives the stderr.")]


MIN_PATHS = 512  # below this, Monte Carlo standard errors are too rough to report (see README)
MAX_PATHS = 1_000_000_000
MAX_HEIGHT = 2**53


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def fail(message: str) -> None:
    err_console.print(f"error: {one_line(message)}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


_OUTPUT_FIELDS: dict = {}  # resolved output path -> option name, for errors while writing


def cli_errors(fn):
    """Turn bad input into one clear line and exit status 2; write the run's outputs at the end.

    Inside the command, files are only staged and printing is deferred: both happen together
    after the command succeeds, all or nothing.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _OUTPUT_FIELDS.clear()
        try:
            with staged_writes() as stage:
                result = fn(*args, **kwargs)
                stage.commit()
            return result
        except (InputError, ValueError) as exc:
            fail(str(exc))
        except OSError as exc:  # writing the outputs failed (disk full, a folder removed meanwhile)
            name = exc.filename or ""
            if not name:  # stdout (e.g. a closed pipe): quiet it, so the exit does not complain
                _silence_stdout()
            field = _OUTPUT_FIELDS.get(_resolved(name), "file") if name else "stdout"
            fail(f"{field}: {name + ': ' if name else ''}{os_reason(exc)}; nothing written")

    return wrapper


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured in tests)
        pass


def _resolved(path) -> str:
    try:
        return str(Path(path).absolute())
    except (OSError, ValueError):
        return str(path)


def output_path(path: Path | None, field: str, suffixes=None, kind: str = "") -> Path | None:
    """Check an output option before any work (see engine.app.output.check_output_path)."""
    from engine.app.output import check_output_path

    if path is None:
        return None
    p = check_output_path(path, field, suffixes, kind)
    _OUTPUT_FIELDS[_resolved(p)] = field
    return p


def input_path(path: Path | None, field: str) -> Path | None:
    from engine.app.output import check_input_path

    return None if path is None else check_input_path(path, field)


def check_paths(paths: int, stderr: bool = True) -> int:
    """``--paths`` bounds; a command that reports standard errors needs MIN_PATHS."""
    if stderr and paths < MIN_PATHS:
        raise InputError("paths", f"at least {MIN_PATHS:,} (fewer give no trustworthy standard error), got {paths:,}")
    if paths > MAX_PATHS:
        raise InputError("paths", f"at most {MAX_PATHS:,}, got {paths:,}")
    return paths


@contextmanager
def chunk_runner(cluster: str | None, workers: int | None):
    """Where the path chunks run: here, on the scheduler at ``--cluster``, or on ``--workers``
    local processes; the numbers are the same."""
    if cluster is None and workers is None:
        yield None
        return
    if cluster is not None and workers is not None:
        raise InputError("workers", "give --cluster or --workers, not both")
    if workers is not None and not 1 <= workers <= 256:
        raise InputError("workers", f"must be an integer in 1..256, got {workers}")
    from engine.mc.chunk_runner import DaskRunner, dask_client

    try:
        client = dask_client(cluster, workers)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("cluster", f"cannot reach a Dask scheduler at {cluster!r}: {one_line(exc)}") from None
    try:
        yield DaskRunner(client)
    finally:
        client.close()
        if workers is not None:
            client.cluster.close()


def target_accuracy(tolerance: float | None, abs_tolerance: float, max_paths: int):
    """``--tolerance``/``--abs-tolerance``/``--max-paths`` as a Tolerance, or None."""
    from engine.mc.tolerance import Tolerance

    if tolerance is None:
        if abs_tolerance:
            raise InputError("abs_tolerance", "needs --tolerance")
        return None
    if max_paths < 2 * TOLERANCE_CHUNK_PATHS:
        raise InputError("max_paths", f"at least {2 * TOLERANCE_CHUNK_PATHS:,} with --tolerance, got {max_paths:,}")
    return Tolerance(tolerance, abs_tolerance)


def tolerance_note(t: dict) -> str:
    if t["met"]:
        return f"tolerance {t['rel']:g} met with {t['paths_used']:,} paths"
    return (f"tolerance {t['rel']:g} NOT met: {t['paths_used']:,} paths (--max-paths) leave the worst stderr "
            f"{t['worst_stderr_over_allowed']:.2f}x what it allows")


def emit(fn, *args, **kwargs) -> None:
    """Print (or any output) as part of the run's commit, after its files."""
    stage = current_stage()
    if stage is None:
        fn(*args, **kwargs)
    else:
        stage.defer(fn, *args, **kwargs)


def say(text: str) -> None:
    emit(out_console.print, text)


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def check_finite(doc: dict) -> dict:
    """A result document with a NaN or infinity is an error naming where."""
    from engine.app.output import first_non_finite

    bad = first_non_finite(doc)
    if bad is not None:
        raise InputError(bad, "the result is not a finite number; the inputs are outside what the engine "
                              "can compute")
    return doc


@contextmanager
def progress_bar(label: str, unit: str = "paths"):
    """A rich progress bar on stderr (shown on terminals only); yields a (done, total) callback."""
    show = sys.stderr.isatty()
    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} " + unit),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
                  disable=not show) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _load_file(loader, path: Path, option: str):
    """Load a config file; a file-level error (missing, unreadable, bad TOML) names the option."""
    input_path(path, option)
    try:
        return loader(path)
    except InputError as exc:
        if exc.field == str(path):
            raise InputError(option, f"{path}: {exc.reason}") from None
        raise


def load_epochs(path: Path):
    """The difficulty epochs CSV, with at least one epoch."""
    from engine.data.load import load_difficulty_epochs

    ep = load_difficulty_epochs(path)
    if ep.empty:
        raise InputError(str(path), "no epochs in the file")
    return ep


def _load_csv(loader, path: Path, option: str):
    """Load a history CSV; every problem names the option and the file."""
    import pandas as pd

    input_path(path, option)
    try:
        return loader(path)
    except InputError as exc:
        if exc.field == str(path):
            raise InputError(option, f"{path}: {exc.reason}") from None
        raise InputError(option, f"{path}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise InputError(option, f"{path}: empty file (no header line)") from None
    except UnicodeDecodeError as exc:
        raise InputError(option, f"{path}: not UTF-8 text (offset {exc.start})") from None
    except (ValueError, pd.errors.ParserError, OverflowError) as exc:
        raise InputError(option, f"{path}: {one_line(exc)}") from None


def load_market(path: Path | None) -> Market:
    from curves.market import Market

    return Market.default() if path is None else _load_file(Market.load, path, "market")


def load_model(path: Path | None) -> ModelParams:
    from engine.mc.model import ModelParams

    return ModelParams.default() if path is None else _load_file(ModelParams.load, path, "model")


def print_json(doc: dict) -> None:
    from engine.app.output import json_text

    emit(_write_stdout, json_text(doc))


def _fmt(x, digits=4):
    if x is None:
        return "-"
    if isinstance(x, float):
        if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e7):
            return f"{x:.{digits - 2}e}"
        return f"{x:,.{digits}f}"
    return str(x)


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title, header_style="bold")
    for c in columns:
        text = c in ("id", "type", "error", "start", "end", "quantity", "date", "parameter", "units")
        table.add_column(c, justify="left" if text else "right", no_wrap=c in ("start", "end"))
    for r in rows:
        table.add_row(*[_fmt(v) for v in r])
    emit(out_console.print, table)


# ---- curve ------------------------------------------------------------------------------------
@app.command()
@cli_errors
def curve(
    months: Annotated[int, typer.Option("--months", help="Calendar months after the as-of date.")] = 36,
    paths: PathsOpt = 100_000,
    seed: SeedOpt = 42,
    market: MarketOpt = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the curve: .csv, .json or .parquet.")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="PNG: forwards, and 5-95% / 25-75% bands of the daily index and difficulty.")] = None,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = None,
    shift: ShiftOpt = None,
    tolerance: TolOpt = None,
    abs_tolerance: AbsTolOpt = 0.0,
    max_paths: MaxPathsOpt = 4_000_000,
    cluster: ClusterOpt = None,
    workers: WorkersOpt = None,
    rng: RngOpt = "counter",
    scrambles: ScramblesOpt = 16,
):
    """Monthly hashprice forward curve (USD/PH/day and BTC/PH/day) and the next difficulty retargets."""
    from engine.app.output import TABLE_SUFFIXES, write_table
    from engine.pricing.curve_builder import build_curve

    output_path(out, "out", TABLE_SUFFIXES, "unsupported file type")
    output_path(plot, "plot", (".png",), "plots are PNG files, got")
    tol = target_accuracy(tolerance, abs_tolerance, max_paths)
    check_paths(max_paths if tol else paths)
    mkt, mdl = load_market(market), load_model(model)
    hs = load_shift(shift, mkt)
    with chunk_runner(cluster, workers) as runner, progress_bar("simulating") as update:
        c = build_curve(mkt, mdl, months=months, paths=max_paths if tol else paths, seed=seed, threads=threads,
                        progress=update, hashrate_shift_per_day=hs, bands=plot is not None, tolerance=tol,
                        runner=runner, rng=rng, scrambles=scrambles,
                        **({"chunk_paths": TOLERANCE_CHUNK_PATHS} if tol else {}))
    doc = check_finite(c.to_dict())
    if rng == "sobol":
        doc["rng"], doc["scrambles"] = rng, scrambles
    if tol is not None:
        worst = max(tol.worst(c.hashprice_usd_per_ph_day, c.hashprice_stderr),
                    tol.worst(c.hashvalue_btc_per_ph_day, c.hashvalue_stderr))
        doc["tolerance"] = {"rel": tol.rel, "abs": tol.abs, "max_paths": max_paths, "paths_used": c.paths,
                            "met": worst <= 1.0, "worst_stderr_over_allowed": worst}
    if out is not None:
        write_table(c.to_frame(), out, doc)
    if plot is not None:
        from engine.app.plots import plot_curve

        plot_curve(c, plot)
    if json_out:
        print_json(doc)
        return
    print_table(
        f"Hashprice forward curve as of {c.asof} ({c.paths:,} paths, seed {c.seed}"
        + (f", Sobol RQMC, {scrambles} scrambles)" if rng == "sobol" else ")"),
        ["start", "end", "USD/PH/day", "stderr", "BTC/PH/day", "stderr", "difficulty"],
        [[m["start"], m["end"], m["hashprice_usd_per_ph_day"], m["hashprice_stderr"],
          m["hashvalue_btc_per_ph_day"], m["hashvalue_stderr"], m["difficulty_mean"]] for m in doc["months"]],
    )
    if tol is not None:
        say(tolerance_note(doc["tolerance"]))
    spot = mkt.spot_hashprice_usd_per_ph_day()
    say(f"spot index {spot:.2f} USD/PH/day; BTC {mkt.btc_spot_usd:,.0f} USD; "
                      f"difficulty {mkt.difficulty:.4e}")
    print_retargets(c.epochs, mkt, c.daily_dates[-1])


RETARGET_ROWS = 8
SURE_REACH = 0.99


def print_retargets(epochs, mkt: Market, horizon: dt.date) -> None:
    """The next retargets: date, mean difficulty with its stderr, and the spread across paths."""
    if not len(epochs):
        say(f"no retarget is reached by half the paths before {horizon}")
        return
    more = f" {len(epochs) - RETARGET_ROWS} more in --json." if len(epochs) > RETARGET_ROWS else ""
    caption = (f"T = 1e12. Date: the UTC day of the mean retarget time. Mean, median and 5%..95% range "
               f"across the paths that reach the epoch by {horizon}; epochs reached by fewer than half the "
               f"paths are not shown, and * marks those reached by fewer than {SURE_REACH:.0%} (their figures "
               f"lean to early, high-hashrate paths).{more}")
    table = Table(title=f"Next difficulty retargets (today {mkt.difficulty / 1e12:,.2f} T, "
                        f"epoch from height {mkt.height - mkt.height % protocol.RETARGET_BLOCKS:,})",
                  header_style="bold", caption=caption)
    for name in ("first block", "expected date", "reached", "mean difficulty", "stderr", "mean vs today",
                 "median vs today", "90% range vs today"):
        table.add_column(name, justify="left" if name == "expected date" else "right")

    def pct(d):
        return f"{100 * (d / mkt.difficulty - 1):+.1f}%" if math.isfinite(d) else "-"

    for e in epochs.head(RETARGET_ROWS).itertuples():
        star = "*" if e.reach_probability < SURE_REACH else ""
        table.add_row(f"{e.start_height:,}", f"{e.expected_start}", f"{100 * e.reach_probability:.1f}%{star}",
                      f"{e.difficulty_mean / 1e12:,.2f} T", f"{e.difficulty_mean_stderr / 1e12:.3f} T",
                      pct(e.difficulty_mean), pct(e.difficulty_p50),
                      f"{pct(e.difficulty_p05)} .. {pct(e.difficulty_p95)}")
    emit(out_console.print, table)


# ---- epochs-check -----------------------------------------------------------------------------
@app.command("epochs-check")
@cli_errors
def epochs_check(
    epochs: Annotated[Path, typer.Argument(help="Difficulty epochs CSV (height,date,timestamp_utc,difficulty,...).")],
    market: MarketOpt = None,
    model: ModelOpt = None,
    paths: PathsOpt = 100_000,
    seed: SeedOpt = 42,
    out: Annotated[Path | None, typer.Option("--out", help="Write the rows: .csv, .json or .parquet.")] = None,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = None,
):
    """Out of sample: the model's difficulty per epoch from the as-of date against the epochs that followed."""
    from engine.app.output import TABLE_SUFFIXES, write_table
    from engine.backtest.epoch_check import check_epochs

    output_path(out, "out", TABLE_SUFFIXES, "unsupported file type")
    check_paths(paths)
    ep = _load_csv(load_epochs, epochs, "epochs")
    mkt, mdl = load_market(market), load_model(model)
    with progress_bar("simulating") as update:
        res = check_epochs(ep, mkt, mdl, paths=paths, seed=seed, threads=threads, progress=update)
    doc = check_finite(res.to_dict())
    if out is not None:
        write_table(res.rows, out, doc)
    if json_out:
        print_json(doc)
        return
    table = Table(title=f"Difficulty per epoch: model as of {res.asof} ({res.paths:,} paths, seed {res.seed}) "
                        f"against {Path(epochs).name}", header_style="bold",
                  caption="T = 1e12; ~ marks a date the file estimates (+/- 1 day); percentile: where the actual "
                          "sits in the model's distribution; log error: ln(actual / model mean); model figures "
                          "over the paths that reach the epoch.")
    for name in ("first block", "actual date", "model date", "actual", "model mean", "p05", "p50", "p95",
                 "percentile", "log error", "in 5-95%"):
        table.add_column(name, justify="left" if "date" in name else "right")
    for r in res.rows.itertuples():
        table.add_row(f"{r.start_height:,}", f"{'~' if r.date_estimated else ''}{r.actual_date}",
                      f"{r.expected_start}", *(f"{x / 1e12:,.2f} T" for x in (
                          r.actual_difficulty, r.model_mean, r.model_p05, r.model_p50, r.model_p95)),
                      f"{r.percentile:.1f}", f"{r.log_error:+.4f}", "yes" if r.inside_90 else "NO")
    emit(out_console.print, table)
    sm = doc["summary"]
    if sm["epochs"]:
        say(
            f"{sm['epochs']} epochs: mean ln(actual/mean) {sm['mean_log_error']:+.4f}, RMS {sm['rmse_log_error']:.4f}; "
            f"inside the 5-95% band {sm['inside_90']} of {sm['epochs']} (expected {sm['inside_90_expected']:.1f}); "
            f"mean percentile {sm['mean_percentile']:.1f}; mean |date error| {sm['mean_abs_date_error_days']:.1f} days"
            + (f"; skipped (reached by < half the paths): {sm['skipped_not_reached']}" if sm["skipped_not_reached"]
               else ""))
    else:
        say(f"no epoch of the file is reached by half the paths within {res.horizon_days} days")


# ---- spot -------------------------------------------------------------------------------------
@app.command()
@cli_errors
def spot(
    price_usd: Annotated[float, typer.Option("--price-usd", help="BTC/USD.")],
    difficulty: Annotated[float | None, typer.Option("--difficulty", help="Network difficulty.")] = None,
    hashrate_ehs: Annotated[
        float | None, typer.Option("--hashrate-ehs", help="Network hashrate (EH/s), instead of difficulty.")
    ] = None,
    subsidy_btc: Annotated[float | None, typer.Option("--subsidy-btc", help="Block subsidy (BTC).")] = None,
    height: Annotated[int | None, typer.Option("--height", help="Block height (sets the subsidy).")] = None,
    fee_btc_per_block: Annotated[
        float, typer.Option("--fee-btc-per-block", help="Fees per block (BTC), e.g. the 144-block mean.")
    ] = 0.0,
    fleet_phs: Annotated[float | None, typer.Option("--fleet-phs", help="Fleet hashrate (PH/s).")] = None,
    efficiency_j_per_th: Annotated[float | None, typer.Option("--efficiency-j-per-th")] = None,
    power_usd_per_kwh: Annotated[float | None, typer.Option("--power-usd-per-kwh")] = None,
    uptime: Annotated[float, typer.Option("--uptime", help="Fraction of the day the fleet runs.")] = 1.0,
    opex_usd_per_day: Annotated[float, typer.Option("--opex-usd-per-day", help="Other costs per day.")] = 0.0,
    capex_usd: Annotated[float | None, typer.Option("--capex-usd", help="Fleet capex, for payback.")] = None,
    json_out: JsonOpt = False,
):
    """Today's hashprice index and, with a fleet, its daily economics."""
    from curves.units import H_PER_EH
    from products.miner_fleet import MinerFleet

    _finite_positive(price_usd, "price_usd")
    if (difficulty is None) == (hashrate_ehs is None):
        raise InputError("difficulty", "give exactly one of --difficulty or --hashrate-ehs")
    if difficulty is not None:
        _finite_positive(difficulty, "difficulty")
        diff = difficulty
    else:
        _finite_positive(hashrate_ehs, "hashrate_ehs")
        diff = protocol.difficulty_from_hashrate_hs(hashrate_ehs * H_PER_EH)
    if (subsidy_btc is None) == (height is None):
        raise InputError("subsidy_btc", "give exactly one of --subsidy-btc or --height")
    if height is not None:
        if not 0 <= height <= MAX_HEIGHT:
            raise InputError("height", f"must lie in 0..2^53, got {height}")
        subsidy_btc = protocol.subsidy_btc(height)
    elif not (math.isfinite(subsidy_btc) and 0 <= subsidy_btc <= 50):
        raise InputError("subsidy_btc", f"must lie in [0, 50], got {subsidy_btc}")
    if not (math.isfinite(fee_btc_per_block) and fee_btc_per_block >= 0):
        raise InputError("fee_btc_per_block", f"must be a finite number >= 0, got {fee_btc_per_block}")
    hv = protocol.hashvalue_btc_per_ph_day(diff, subsidy_btc, fee_btc_per_block)
    hp = hv * price_usd
    doc = {"hashvalue_btc_per_ph_day": hv, "hashprice_usd_per_ph_day": hp,
           "hashprice_usd_per_th_day": hp / 1000.0, "difficulty": diff,
           "subsidy_btc": subsidy_btc, "fee_btc_per_block": fee_btc_per_block}
    fleet_inputs = (fleet_phs, efficiency_j_per_th, power_usd_per_kwh)
    if any(v is not None for v in fleet_inputs):
        for name, v in zip(("fleet_phs", "efficiency_j_per_th", "power_usd_per_kwh"), fleet_inputs):
            if v is None:
                raise InputError(name, "needed with the other fleet options")
        fleet = MinerFleet(fleet_phs, efficiency_j_per_th, power_usd_per_kwh, uptime,
                           opex_usd_per_day, capex_usd)
        doc.update(fleet.economics(hp))
    for key, v in doc.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(key, f"the result is {v}: the inputs are outside what can be computed")
    if json_out:
        print_json(doc)
        return
    print_table("Spot hashprice", ["quantity", "value"], [[k, v] for k, v in doc.items()])


def _finite_positive(x: float, name: str) -> None:
    if not (math.isfinite(x) and x > 0):
        raise InputError(name, f"must be a finite number > 0, got {x}")


# ---- price ------------------------------------------------------------------------------------
@app.command()
@cli_errors
def price(
    portfolio: Annotated[Path, typer.Argument(help="Portfolio TOML of \\[\\[trade]] tables.")],
    paths: PathsOpt = 100_000,
    seed: SeedOpt = 42,
    market: MarketOpt = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write trade results: .csv, .json or .parquet.")] = None,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = None,
    shift: ShiftOpt = None,
    fixings: Annotated[Path | None, typer.Option(
        "--fixings", help="Realised daily values for seasoned trades: a daily history CSV, or published index "
                          "values (date, hashprice_usd_per_ph_day[, hashvalue_btc_per_ph_day]).")] = None,
    flows: Annotated[Path | None, typer.Option(
        "--flows", help="Write every cash flow (pay date, expected amount, PV, stderrs): .csv, .json or "
                        ".parquet.")] = None,
    tolerance: TolOpt = None,
    abs_tolerance: AbsTolOpt = 0.0,
    max_paths: MaxPathsOpt = 4_000_000,
    cluster: ClusterOpt = None,
    workers: WorkersOpt = None,
    rng: RngOpt = "counter",
):
    """Price a portfolio; a trade with bad fields gets its error set while the rest are priced."""
    import pandas as pd

    from engine.app.output import TABLE_SUFFIXES, write_table
    from engine.data.realised_fixings import load_realised_fixings
    from engine.pricing.pricer import price_trades
    from products.portfolio import load_portfolio

    if rng != "counter":
        raise InputError("rng", f"{rng!r}: price uses the counter RNG only (--rng sobol is for the curve)")
    output_path(out, "out", TABLE_SUFFIXES, "unsupported file type")
    output_path(flows, "flows", TABLE_SUFFIXES, "unsupported file type")
    tol = target_accuracy(tolerance, abs_tolerance, max_paths)
    check_paths(max_paths if tol else paths)
    trades, errors = _load_file(load_portfolio, portfolio, "portfolio")
    realised = _load_csv(load_realised_fixings, fixings, "fixings") if fixings is not None else None
    mkt, mdl = load_market(market), load_model(model)
    hs = load_shift(shift, mkt)
    with chunk_runner(cluster, workers) as runner, progress_bar("pricing") as update:
        res = price_trades(trades, mkt, mdl, paths=max_paths if tol else paths, seed=seed, errors=errors,
                           threads=threads, progress=update, hashrate_shift_per_day=hs, realised=realised,
                           cash_flows=True, tolerance=tol, runner=runner)
    doc = check_finite(res.to_dict())
    if tol is not None:
        doc["tolerance"] = _price_tolerance(res, tol, max_paths)
    if out is not None:
        flat = [{k: v for k, v in t.items() if k not in ("measures", "cashflows")} for t in doc["trades"]]
        write_table(pd.DataFrame(flat), out, doc)
    if flows is not None:
        write_table(res.flows_frame(), flows)
    if json_out:
        print_json(doc)
        return
    print_table(f"Portfolio as of {mkt.asof} ({res.paths:,} paths, seed {seed})",
                ["id", "type", "pv_usd", "pv_stderr", "fair_rate", "currency", "initial_margin", "error"],
                [[t["id"], t["type"], t["pv_usd"], t["pv_stderr"], t["fair_rate"], t["currency"],
                  t["initial_margin"], t["error"]] for t in doc["trades"]])
    say(f"total PV {res.total_pv_usd:,.2f} USD")
    if tol is not None:
        say(tolerance_note(doc["tolerance"]))


def _price_tolerance(res, tol, max_paths: int) -> dict:
    """How the priced trades' PVs and fair rates stand against the tolerance."""
    from engine.mc.tolerance import Tolerance

    priced = [t for t in res.trades if t.error is None and t.status != "settled"]
    worst = max([tol.worst([t.pv_usd], [t.pv_stderr]) for t in priced]
                + [Tolerance(tol.rel).worst([t.fair_rate], [t.fair_rate_stderr]) for t in priced
                   if t.fair_rate is not None and t.fair_rate_stderr is not None] + [0.0])
    return {"rel": tol.rel, "abs": tol.abs, "max_paths": max_paths, "paths_used": res.paths, "met": worst <= 1.0,
            "worst_stderr_over_allowed": worst}


# ---- hedge ------------------------------------------------------------------------------------
@app.command()
@cli_errors
def hedge(
    fleet: Annotated[Path, typer.Argument(help="Fleet TOML: [fleet], [hedge] and an optional [token].")],
    paths: PathsOpt = 100_000,
    seed: SeedOpt = 42,
    market: MarketOpt = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report: .json, or the months as .csv.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG: horizon P&L histograms, unhedged vs each "
                                                             "hedge.")] = None,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = None,
    shift: ShiftOpt = None,
    tolerance: TolOpt = None,
    abs_tolerance: AbsTolOpt = 0.0,
    max_paths: MaxPathsOpt = 1_000_000,
    quantiles: Annotated[str | None, typer.Option(
        "--quantiles", help="per_path (keep every path's cash flows) or histogram (stream them: bounded memory); "
                            "default: per_path while they fit in memory.")] = None,
):
    """A miner's monthly cash flows, its hedges (BTC futures, NDFs, collar) and the cash flow at risk left."""
    import pandas as pd

    from engine.app.output import write_table
    from engine.risk.hedge import hedge_fleet, hedge_to_tolerance
    from products.fleet_file import load_fleet_file

    output_path(out, "out", (".json", ".csv"), "the hedge report is .json or .csv, got")
    output_path(plot, "plot", (".png",), "plots are PNG files, got")
    if quantiles not in (None, "per_path", "histogram"):
        raise InputError("quantiles", f"--quantiles is per_path or histogram, got {quantiles!r}")
    tol = target_accuracy(tolerance, abs_tolerance, max_paths)
    check_paths(max_paths if tol else paths)
    ff = _load_file(load_fleet_file, fleet, "fleet")
    mkt, mdl = load_market(market), load_model(model)
    hs = load_shift(shift, mkt)
    with progress_bar("simulating the fleet") as update:
        if tol is None:
            res = hedge_fleet(ff, mkt, mdl, paths=paths, seed=seed, threads=threads, shift=hs, progress=update,
                              quantiles=quantiles)
        else:
            res = hedge_to_tolerance(ff, mkt, mdl, tol, max_paths=max_paths, seed=seed, threads=threads, shift=hs,
                                     progress=update, quantiles=quantiles)
    doc = check_finite(res.to_dict())
    if out is not None:
        months = pd.DataFrame([{k: v for k, v in m.items() if k != "hedge_effectiveness"}
                               | {f"effectiveness_{h}": e for h, e in m["hedge_effectiveness"].items()}
                               for m in doc["months"]])
        write_table(months, out, doc)
    if plot is not None:
        from engine.app.plots import plot_hedge_pnl

        plot_hedge_pnl(res.horizon_pnl_usd or res.horizon_histograms, plot,
                       f"{Path(fleet).name}: {doc['paths']:,} paths, as of {doc['asof']}")
    if json_out:
        print_json(doc)
        return
    _print_hedge(doc)
    if tol is not None:
        say(tolerance_note(doc["tolerance"]))


def _usd_pm(doc: dict, key: str) -> str:
    return f"{doc[key]:,.0f} ± {doc[key + '_stderr']:,.0f}"


def _print_hedge(doc: dict) -> None:
    f = doc["fleet"]
    usd, btc, frac = "{:,.0f}".format, "{:.3f}".format, "{:.3f}".format
    print_table(f"Fleet by month as of {doc['asof']} ({doc['paths']:,} paths, seed {doc['seed']}): expected "
                "values (physical measure), hedges and their effectiveness",
                ["month", "future", "BTC mined", "revenue", "power", "net ± se", "delta BTC (lots)",
                 "min-var BTC (lots)", "NDF strike", "eff. delta", "eff. min-var", "eff. NDF", "eff. collar"],
                [[m["start"][:7], m["futures_expiry"][5:], btc(m["expected_btc_mined"]),
                  usd(m["expected_revenue_usd"]), usd(m["expected_power_cost_usd"]),
                  f"{usd(m['expected_net_usd'])} ± {usd(m['expected_net_usd_stderr'])}",
                  f"{btc(m['delta_hedge_btc'])} ({m['delta_hedge_contracts']})",
                  f"{btc(m['min_variance_hedge_btc'])} ({m['min_variance_hedge_contracts']})",
                  f"{doc['hedges']['ndf_fair_strikes'][k]['strike_usd_per_ph_day']:.2f}",
                  *[frac(m["hedge_effectiveness"][h]) if h in m["hedge_effectiveness"] else "-"
                    for h in ("delta", "min_variance", "hashprice_forward", "collar")]]
                 for k, m in enumerate(doc["months"])])
    print_table(f"Net cash flow over {f['horizon_months']} months (USD, undiscounted): cash flow at risk",
                ["hedge", "mean", "std", "VaR 95%", "CVaR 95%", "VaR 99%", "CVaR 99%", "P(a month < 0)",
                 "effectiveness"],
                [[h, usd(p["mean_usd"]), usd(p["std_usd"]), usd(p["var_95_usd"]), usd(p["cvar_95_usd"]),
                  usd(p["var_99_usd"]), usd(p["cvar_99_usd"]), f"{p['prob_negative_month']:.3f}",
                  f"{frac(p['effectiveness'])} ± {p['effectiveness_stderr']:.1g}"]
                 for h, p in doc["pnl"].items()])
    c_on, c_sig = "on" if f["curtailment"] else "off", f["curtailment_signal"].replace("_", " ")
    say(f"curtailment ({c_on}, {c_sig} signal) is worth {_usd_pm(doc, 'curtailment_value_usd')} USD over the "
        f"horizon (same-day upper bound {_usd_pm(doc, 'curtailment_upper_bound_usd')}); fleet PV "
        f"{_usd_pm(doc, 'fleet_pv_usd')} USD")
    if "token" in doc:
        t = doc["token"]
        say(f"token ({t['ths_per_token']:g} TH/s, {t['life_months']} months, fee {t['fee_usd_per_th_day']:g} "
            f"USD/TH/day): PV {t['pv_usd']:.4g} ± {t['pv_usd_stderr']:.2g} USD = {t['pv_btc_at_spot']:.4g} BTC "
            "at spot; "
            f"value 5-95% {t['value_usd']['p05']:.4g}..{t['value_usd']['p95']:.4g} USD, BTC paid "
            f"{t['paid_btc']['p05']:.4g}..{t['paid_btc']['p95']:.4g}")


# ---- history ----------------------------------------------------------------------------------
@app.command()
@cli_errors
def history(
    data: Annotated[Path, typer.Argument(help="Daily network history CSV (project or Coin Metrics columns).")],
    epochs: Annotated[Path | None, typer.Option("--epochs", help="Difficulty epochs CSV.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Daily series: .csv, .json or .parquet.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG: hashprice index and hash ribbons.")] = None,
    json_out: JsonOpt = False,
):
    """Historical hashprice index (protocol math), fee share, Hash Ribbons and epoch changes."""
    from engine.app.output import TABLE_SUFFIXES, write_table
    from engine.app.plots import plot_history
    from engine.data.index import (
        epoch_difficulty_changes,
        hash_ribbons,
        hashprice_history,
        ribbon_signals,
    )
    from engine.data.load import load_network_history

    output_path(out, "out", TABLE_SUFFIXES, "unsupported file type")
    output_path(plot, "plot", (".png",), "plots are PNG files, got")
    input_path(epochs, "epochs")
    hist = _load_csv(load_network_history, data, "data")
    index = hashprice_history(hist)
    ribbons = hash_ribbons(hist)
    signals = ribbon_signals(ribbons)
    table = index.join(ribbons[["sma_short_ehs", "sma_long_ehs", "capitulation"]])
    table = table.reset_index().rename(columns={"index": "date"})
    table["date"] = table["date"].dt.date.astype(str)
    doc = {
        "start": table["date"].iloc[0], "end": table["date"].iloc[-1],
        "gaps": [[str(a.date()), str(b.date())] for a, b in hist.attrs.get("gaps", [])],
        "days": json.loads(table.to_json(orient="records")),
        "signals": [{"date": str(r.date.date()), "signal": r.signal} for r in signals.itertuples()],
    }
    if epochs is not None:
        ep = _load_csv(lambda p: epoch_difficulty_changes(load_epochs(p)), epochs, "epochs")
        doc["epochs"] = json.loads(ep.to_json(orient="records", date_format="iso"))
    if out is not None:
        write_table(table, out, doc)
    if plot is not None:
        plot_history(index, ribbons, plot)
    if json_out:
        print_json(doc)
        return
    last = table.tail(5)
    print_table(f"Hashprice index history {doc['start']}..{doc['end']} (last days)",
                ["date", "USD/PH/day", "BTC/PH/day", "fee share", "EH/s"],
                [[r.date, r.hashprice_usd_per_ph_day, r.hashvalue_btc_per_ph_day, r.fee_share, r.hashrate_ehs]
                 for r in last.itertuples()])
    recent = doc["signals"][-6:]
    say("Hash Ribbons signals (latest): "
                      + ", ".join(f"{s['date']} {s['signal']}" for s in recent))


# ---- calibrate --------------------------------------------------------------------------------
@app.command()
@cli_errors
def calibrate(
    data: Annotated[Path, typer.Argument(help="Daily network history CSV.")],
    out: Annotated[Path, typer.Option("--out", help="Model parameters TOML to write.")],
    asof: Annotated[str | None, typer.Option("--asof", help="Use data up to this date (YYYY-MM-DD).")] = None,
    fee_window_days: Annotated[int, typer.Option("--fee-window-days", help="Fee model window; 0: all.")] = 365,
    json_out: JsonOpt = False,
):
    """Estimate every model parameter from history up to --asof, with standard errors."""
    from curves.market import parse_date
    from engine.calibration.physical import CalibrationError, default_header
    from engine.calibration.physical import calibrate as run_calibration
    from engine.data.load import load_network_history

    output_path(out, "out", (".toml",), "the model file is TOML, got")
    day = parse_date(asof, "asof") if asof else None
    if fee_window_days < 0:
        raise InputError("fee_window_days", f"must be >= 0, got {fee_window_days}")
    hist = _load_csv(load_network_history, data, "data")
    try:
        res = run_calibration(hist, day, fee_window_days=fee_window_days or None, source=Path(data).name)
    except CalibrationError as exc:
        raise InputError("data", f"{data}: {exc}") from None
    cmd = f"hashprice calibrate {Path(data).name} --asof {res.asof} --fee-window-days {fee_window_days}"
    res.to_toml(out, header=default_header(res, cmd))
    table = res.table.drop(columns=["method"])
    if json_out:
        print_json({"asof": str(res.asof), "data_start": str(res.data_start), "data_end": str(res.data_end),
                    "out": str(out), "parameters": json.loads(table.to_json(orient="records"))})
        return
    print_table(f"Calibration as of {res.asof} (data {res.data_start}..{res.data_end}) -> {out}",
                ["parameter", "estimate", "stderr", "ci_low", "ci_high", "units"],
                [[r.parameter, r.estimate, r.stderr, r.ci_low, r.ci_high, r.units] for r in table.itertuples()])


# ---- calibrate-quotes (market-implied) -----------------------------------------------------------
def load_shift(path: Path | None, mkt: Market):
    """The ``--shift`` file of ``curve``/``price``: a HashrateShift for the market's as-of date."""
    if path is None:
        return None
    from engine.calibration.hashrate_shift import HashrateShift

    try:
        hs = _load_file(HashrateShift.from_toml, path, "shift")
    except InputError as exc:
        if exc.field == "shift":
            raise
        raise InputError(f"shift.{exc.field}", f"{path}: {exc.reason}") from None
    if hs.asof != mkt.asof:
        raise InputError("shift.asof", f"{path} is calibrated as of {hs.asof}, the market is as of {mkt.asof}")
    return hs


@app.command("calibrate-quotes")
@cli_errors
def calibrate_quotes(
    quotes: Annotated[Path, typer.Argument(
        help="Quoted forwards: CSV with columns start,end,hashprice_usd_per_ph_day[,bid,ask,id] "
             "or TOML \\[\\[quote]] tables with the same keys.")],
    paths: PathsOpt = 20_000,
    seed: SeedOpt = 42,
    market: MarketOpt = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the calibrated shift TOML (for curve --shift and price --shift).")] = None,
    tol_stderr: Annotated[float, typer.Option(
        "--tol-stderr", help="Each quote must be repriced within this many model stderrs.")] = 0.1,
    json_out: JsonOpt = False,
    threads: ThreadsOpt = None,
):
    """Bootstrap the hashrate market price of risk (a drift shift per tenor) from quoted forwards."""
    from engine.calibration.implied import bootstrap_hashrate_shift
    from engine.calibration.quotes import load_quotes

    output_path(out, "out", (".toml",), "the shift file is TOML, got")
    check_paths(paths)
    mkt, mdl = load_market(market), load_model(model)
    qs = _load_file(lambda p: load_quotes(p, mkt.asof), quotes, "quotes")
    with progress_bar("calibrating", "steps") as update:
        res = bootstrap_hashrate_shift(mkt, mdl, qs, paths=paths, seed=seed, tol_stderr=tol_stderr,
                                       threads=threads, progress=update)
    doc = check_finite(res.to_dict())
    doc["out"] = str(out) if out is not None else None
    if out is not None:
        res.to_toml(out, header=(
            f"Hashrate drift shift (market price of risk) bootstrapped from {Path(quotes).name}\n"
            f"hashprice calibrate-quotes {Path(quotes).name} --paths {paths} --seed {seed}\n"
            "Use with: hashprice curve --shift FILE, hashprice price PORTFOLIO --shift FILE"))
    if json_out:
        print_json(doc)
        return
    print_table(f"Market-implied hashrate drift shift as of {res.asof} ({res.paths:,} paths, seed {res.seed})",
                ["start", "end", "quote", "model", "stderr", "error/stderr", "segment", "shift/day", "shift/year"],
                [[q["start"], q["end"], q["quote_usd_per_ph_day"], q["model_usd_per_ph_day"],
                  q["stderr_usd_per_ph_day"], q["error_stderrs"], f"{q['segment_start']}..{q['segment_end']}",
                  q["shift_per_day"], q["shift_per_year"]] for q in doc["quotes"]])
    say(f"USD/PH/day; shift = extra drift of ln(hashrate), flat after {res.shift.end}; "
                      f"{res.evaluations} simulations in {res.seconds:.1f} s"
                      + (f"; written to {out}" if out is not None else ""))


# ---- snapshot ---------------------------------------------------------------------------------
@app.command()
@cli_errors
def snapshot(
    data: Annotated[Path, typer.Argument(help="Daily network history CSV.")],
    out: Annotated[Path, typer.Option("--out", help="Market snapshot TOML to write.")],
    asof: Annotated[str | None, typer.Option("--asof", help="A day of the history (default: its last).")] = None,
    epochs: Annotated[Path | None, typer.Option("--epochs", help="Difficulty epochs CSV (exact epoch state).")] = None,
    model: ModelOpt = None,
    btc_drift_annual: Annotated[float, typer.Option(
        "--btc-drift", help="Physical BTC drift a year, as the forward basis.")] = 0.0,
    json_out: JsonOpt = False,
):
    """A market snapshot on a past day, from the history up to that day: network state, the filtered
    hashrate and its uncertainty, the feedback average, and a physical BTC (usd_rate 0, trailing vols)."""
    import pandas as pd

    from curves.market import parse_date
    from engine.data.historical_market import market_from_history
    from engine.data.load import load_network_history

    output_path(out, "out", (".toml",), "the market file is TOML, got")
    day = parse_date(asof, "asof") if asof else None
    mdl = load_model(model)
    hist = _load_csv(load_network_history, data, "data")
    dates = hist["date"] if "date" in hist.columns else hist.index
    day = day or pd.Timestamp(dates.max()).date()
    ep = _load_csv(load_epochs, epochs, "epochs") if epochs is not None else None
    mkt = market_from_history(hist, day, epochs=ep, btc_drift_annual=btc_drift_annual,
                              hashrate_vol_annual=mdl.hashrate_vol_annual, ema_days=mdl.hashprice_ema_days)
    mkt.save(out)
    doc = {k: (str(v) if isinstance(v, dt.date) else v) for k, v in mkt.to_dict().items() if k != "btc_vols"}
    if json_out:
        print_json({**doc, "out": str(out)})
        return
    say(
        f"market as of {mkt.asof} -> {out}: BTC {mkt.btc_spot_usd:,.2f} USD, difficulty {mkt.difficulty:.6g}, "
        f"height {mkt.height:,}, hashrate {mkt.hashrate_ehs:,.1f} EH/s +/- {100 * mkt.hashrate_log_sd:.1f}% "
        f"(filtered), feedback average {mkt.hashprice_ema_usd_per_ph_day:.2f} USD/PH/day, spot index "
        f"{mkt.spot_hashprice_usd_per_ph_day():.2f}")


# ---- backtest ---------------------------------------------------------------------------------
def _parse_horizons(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError("horizons", f"comma-separated whole months, e.g. 1,3,6; got {text!r}") from None


@contextmanager
def _origin_errors(data: Path):
    """A model or market made from the data at an origin that the engine refuses is a data error."""
    from dataclasses import fields

    from curves.market import Market
    from engine.calibration.physical import CalibrationError
    from engine.mc.model import ModelParams

    made = {f.name for f in fields(ModelParams)} | {f.name for f in fields(Market)}
    try:
        yield
    except CalibrationError as exc:
        raise InputError("data", f"{data}: {exc}") from None
    except InputError as exc:
        if exc.field.split("[")[0].split(".")[0] not in made:
            raise
        raise InputError("data", f"{data}: at an origin, the model or market made from the data is outside "
                         f"what the engine can simulate ({exc})") from None


@app.command()
@cli_errors
def backtest(
    data: Annotated[Path, typer.Argument(help="Daily network history CSV.")],
    horizons: Annotated[str, typer.Option("--horizons", help="Months ahead, comma-separated.")] = "1,3,6,12",
    paths: PathsOpt = 2_000,
    seed: SeedOpt = 42,
    start: Annotated[str, typer.Option("--start", help="First origin: first of a month on/after.")] = "2018-01-01",
    end: Annotated[str | None, typer.Option("--end", help="Last origin (default: the last fully observed).")] = None,
    epochs: Annotated[Path | None, typer.Option("--epochs", help="Difficulty epochs CSV (epoch start times).")] = None,
    vol_window_days: Annotated[int, typer.Option("--vol-window-days", help="Trailing BTC vol window.")] = 90,
    vol_model: Annotated[str, typer.Option("--vol-model", help="BTC vol: mean_reverting or flat.")] = "mean_reverting",
    hashrate_state: Annotated[str, typer.Option(
        "--hashrate-state", help="Initial hashrate: filtered (Kalman posterior) or 7d (7-day mean).")] = "filtered",
    out: Annotated[Path | None, typer.Option(
        "--out", help="Results: .json (settings, summary, per-origin records), or .csv/.parquet (records).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG: PIT, coverage, CRPS, 1-month fan.")] = None,
    json_out: JsonOpt = False,
    threads: Annotated[int, typer.Option("--threads", help="Numba threads per run (small runs: 1 is fastest).")] = 1,
):
    """Rolling-origin backtest of hashprice, hashvalue and difficulty forecasts: coverage, PIT, CRPS
    against a naive random walk, and the median's log bias by period."""
    from curves.market import parse_date
    from engine.app.output import TABLE_SUFFIXES, write_table
    from engine.app.plots import plot_backtest
    from engine.backtest.backtest import run_backtest
    from engine.data.load import load_network_history

    output_path(out, "out", TABLE_SUFFIXES, "unsupported file type")
    output_path(plot, "plot", (".png",), "plots are PNG files, got")
    check_paths(paths, stderr=False)  # forecast distributions, no stderr: run_backtest sets the minimum
    hz = _parse_horizons(horizons)
    first = parse_date(start, "start")
    last = parse_date(end, "end") if end else None
    if threads < 1:
        raise InputError("threads", f"must be >= 1, got {threads}")
    input_path(data, "data")
    input_path(epochs, "epochs")
    hist = _load_csv(load_network_history, data, "data")
    ep = _load_csv(load_epochs, epochs, "epochs") if epochs is not None else None
    with progress_bar("backtest", "origins") as update, _origin_errors(data):
        res = run_backtest(hist, horizons=hz, paths=paths, seed=seed, start=first, end=last,
                           vol_window_days=vol_window_days, vol_model=vol_model,
                           hashrate_state=hashrate_state, epochs=ep, threads=threads, progress=update)
    doc = res.to_dict()
    doc["settings"]["data_file"] = Path(data).name
    check_finite(doc)
    if out is not None:
        write_table(res.records.astype({"origin": str, "target_start": str, "target_end": str}), out, doc)
    if plot is not None:
        plot_backtest(res, plot)
    if json_out:
        print_json(doc)
        return
    st = doc["settings"]
    print_table(
        f"Backtest: {st['origins']} monthly origins {st['first_origin']}..{st['last_origin']} "
        f"({st['paths']:,} paths, seed {seed}); target: 30-day mean of the index (USD or BTC per PH/day) "
        "or of difficulty, h months ahead; bias = mean log(realised / model median) +/- HAC stderr",
        ["horizon", "target", "origins", "cov50 model", "cov90 model", "cov90 naive", "CRPS ratio",
         "DM t", "bias", "bias 2018-20", "bias 2021-25"],
        [[f"{r['horizon_months']}m", r["target"], r["origins"], r["model_coverage_50"],
          r["model_coverage_90"], r["naive_coverage_90"], r["crps_ratio"], r["dm_t_stat"],
          _pm(r["bias_log"], r["bias_log_stderr"]), _pm(r["bias_log_2018_2020"], r["bias_log_2018_2020_stderr"]),
          _pm(r["bias_log_2021_2025"], r["bias_log_2021_2025_stderr"])] for r in doc["summary"]],
    )
    acc = doc["acceptance"]
    say(
        "acceptance (index forecasts: model 90% coverage in 85-95% at 1-6 months and 80-97% at 12, CRPS "
        f"<= 0.9x naive for BTC and <= naive for USD): {'PASS' if acc['passed'] else 'FAIL'}; naive = driftless "
        f"random walk in the log index with trailing {st['naive_window_days']}d vol; DM t < 0 favours the "
        f"model; run time {res.seconds:.1f} s"
        + (f"; written to {out}" if out is not None else "") + (f"; plot {plot}" if plot is not None else ""))


# ---- risk -------------------------------------------------------------------------------------
RISK_COLUMNS = {  # ladder measure -> (short column label, its unit)
    "pv": ("pv", "USD"), "btc_delta": ("delta", "BTC"), "btc_gamma_per_1pct": ("gamma/1%", "BTC"),
    "vega_per_vol_point": ("vega/pt", "USD"), "hashrate_start_per_1pct": ("H0 +1%", "USD"),
    "hashrate_drift_per_1pct_year": ("drift +1%/y", "USD"), "fee_today_per_1pct": ("fee +1%", "USD"),
    "fee_long_run_per_1pct": ("fee LR +1%", "USD"), "usd_dv01": ("DV01", "USD"), "theta_1d": ("theta 1d", "USD"),
}


@app.command()
@cli_errors
def risk(
    portfolio: Annotated[Path, typer.Argument(help="Portfolio TOML of \\[\\[trade]] tables.")],
    paths: PathsOpt = 100_000,
    seed: SeedOpt = 42,
    market: MarketOpt = None,
    model: ModelOpt = None,
    shift: ShiftOpt = None,
    quotes: Annotated[Path | None, typer.Option(
        "--quotes", help="Quoted forwards (as calibrate-quotes reads them): a delta to each, the shift "
                         "re-bootstrapped per bumped quote (one calibration per quote).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the ladder: .csv, .json or .parquet.")] = None,
    json_out: JsonOpt = False,
    scenarios: Annotated[str | None, typer.Option(
        "--scenarios", help="Scenario grid BTC_PCTS:HASHRATE_PCTS, moves in percent "
                            "(default -20,-10,0,10,20:-10,0,10).")] = None,
    threads: ThreadsOpt = None,
    fleet: Annotated[Path | None, typer.Option(
        "--fleet", help="Fleet TOML (as hedge reads it): its position (and token) join the portfolio, "
                        "as trades 'fleet' (and 'token').")] = None,
):
    """Greeks of a portfolio by bump and reprice on common random numbers, its risk ladder and a
    scenario grid of BTC x starting hashrate moves."""
    from engine.app.output import TABLE_SUFFIXES, write_table
    from engine.calibration.quotes import load_quotes
    from engine.risk.greeks import CALIBRATION_PATHS, portfolio_risk
    from engine.risk.quote_deltas import bootstrap_quote_bumps
    from engine.risk.scenario_grid import DEFAULT_SCENARIOS, ScenarioGrid
    from products.fleet_file import load_fleet_file
    from products.portfolio import load_portfolio

    output_path(out, "out", TABLE_SUFFIXES, "unsupported file type")
    grid = ScenarioGrid.parse(DEFAULT_SCENARIOS if scenarios is None else scenarios)
    check_paths(paths)
    trades, errors = _load_file(load_portfolio, portfolio, "portfolio")
    mkt, mdl = load_market(market), load_model(model)
    if fleet is not None:
        trades = trades + fleet_trades(_load_file(load_fleet_file, fleet, "fleet"), mkt, trades, errors)
    hs = load_shift(shift, mkt)
    qs = _load_file(lambda p: load_quotes(p, mkt.asof), quotes, "quotes") if quotes is not None else None
    bumps = None
    if qs:
        with progress_bar("calibrating quotes", "calibrations") as update:
            bumps = bootstrap_quote_bumps(mkt, mdl, qs, paths=CALIBRATION_PATHS, seed=seed, threads=threads,
                                          progress=update)
    with progress_bar("repricing scenarios") as update:
        rep = portfolio_risk(trades, mkt, mdl, paths=paths, seed=seed, errors=errors, threads=threads,
                             hashrate_shift_per_day=hs, quote_bumps=bumps, grid=grid, progress=update)
    doc = check_finite(rep.to_dict())
    if out is not None:
        write_table(rep.to_frame(), out, doc)
    if json_out:
        print_json(doc)
        return
    print_risk(rep, Path(portfolio).name)


def fleet_trades(ff, market, trades, errors) -> list:
    """A fleet file's position and token as trades of a portfolio; an id the portfolio already
    uses is a clear error."""
    book = [t for t in (ff.position(market.asof), ff.token_trade(market.asof)) if t is not None]
    taken = {t.trade_id for t in trades} | {e.trade_id for e in errors}
    for t in book:
        if t.trade_id in taken:
            raise InputError("fleet", f"the portfolio already has a trade '{t.trade_id}': rename it to add the fleet")
    return book


def _short(v) -> str:
    """A ladder value in at most about 9 characters."""
    if v is None:
        return "-"
    if v == 0 or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.4g}" if abs(v) >= 0.01 else f"{v:.2e}"


def print_risk(rep, name: str) -> None:
    """The portfolio's totals, the ladder by trade, quote deltas, the grid, and every error."""
    rows = rep.rows
    print_table(f"Risk of {name} as of {rep.asof} ({rep.paths:,} paths, seed {rep.seed}, "
                f"{rep.extra['scenarios']} scenarios on common random numbers)",
                ["measure", "bucket", "value", "stderr", "units"],
                [[r["measure"], r["bucket"], r["value"], r["stderr"], r["unit"]] for r in rep.portfolio_rows()])
    trades = list(dict.fromkeys(r["trade"] for r in rows))
    by = {(r["trade"], r["measure"], r["bucket"]): r for r in rows}
    print_table("Risk ladder by trade (units: pv, vega/pt, H0, drift, fees, DV01, theta in USD; delta and "
                "gamma/1% in BTC; stderrs in --json and --out)",
                ["id", *(label for label, _ in RISK_COLUMNS.values())],
                [[t, *(_short(by.get((t, m, "all"), {}).get("value")) for m in RISK_COLUMNS)] for t in trades])
    buckets = list(dict.fromkeys(r["bucket"] for r in rows if r["measure"] == "quote_delta"))
    if buckets:
        print_table("Delta to each quoted forward, USD per +1 USD/PH/day of the quote (columns: quote ids, or "
                    "their windows)", ["id", *(b.split(" ")[0] for b in buckets)],
                    [[t, *(_short(by.get((t, "quote_delta", b), {}).get("value")) for b in buckets)] for t in trades])
    if rep.grid:
        cells = {(c.btc_pct, c.hashrate_pct): c for c in rep.grid}

        def cell(c) -> str:
            return "-" if c.change_usd is None else f"{c.change_usd:+,.0f} ± {c.change_stderr:,.0f}"

        base = cells.get((0.0, 0.0))
        print_table("Scenario grid: portfolio PV change against the base, USD ± stderr (rows: BTC spot and "
                    "forwards; columns: starting hashrate)",
                    ["BTC move", *(f"hashrate {y:+g}%" for y in rep.hashrate_pcts)],
                    [[f"{x:+g}%", *(cell(cells[(x, y)]) for y in rep.hashrate_pcts)] for x in rep.btc_pcts])
        if base is not None and base.pv_usd is not None:
            say(f"base PV {base.pv_usd:,.2f} ± {base.pv_stderr:,.2f} USD")
    for r in rows:
        if r["error"] is not None and not (r["trade"] == "portfolio" and r["value"] is not None):
            say(f"{r['trade']}: {r['measure']}{'' if r['bucket'] == 'all' else ' ' + r['bucket']}: {r['error']}")
    for c in rep.grid:
        if c.error is not None:
            say(f"scenario BTC {c.btc_pct:+g}%, hashrate {c.hashrate_pct:+g}%: {c.error}")


def _pm(value: float, stderr: float) -> str:
    if value is None or stderr is None or not (math.isfinite(value) and math.isfinite(stderr)):
        return "-"
    return f"{value:+.3f} ± {stderr:.3f}"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors (a bad option value, a missing option) are one line too.

    Ctrl-C is a clean abort (exit status 130), SIGTERM too (143): the run's staged files are
    never written and temporary files are removed.
    """
    from typer._click import exceptions as click_exc  # typer vendors its own click

    def line(text: str) -> None:
        err_console.print(f"error: {one_line(text)}", markup=False, highlight=False, soft_wrap=True)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        code = app(args=argv, prog_name="hashprice", standalone_mode=False)  # the code of a typer.Exit
        if code == 130:  # typer turns Ctrl-C in a command into Exit(130)
            line("interrupted")
        sys.exit(code if isinstance(code, int) else 0)
    except click_exc.NoArgsIsHelpError as exc:
        err_console.print(exc.ctx.get_help() if exc.ctx else str(exc), markup=False, highlight=False)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        line("interrupted")
        sys.exit(130)
    except Terminated as exc:
        line("terminated")
        sys.exit(exc.code)
    except click_exc.ClickException as exc:
        param = getattr(exc, "param", None)
        name = param.name if param is not None and param.name else "usage"
        line(f"{name}: {exc.format_message()}")
        sys.exit(exc.exit_code or 2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    main()
