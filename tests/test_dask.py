"""Chunks on a Dask cluster: the same numbers as a local run with 1 or 2 workers, and when a
worker is killed mid-run (its tasks are rerun elsewhere; being pure, they give the same result)."""

import os
import signal

import pytest

from curves.market import Market
from engine.mc.chunk_runner import DaskRunner, dask_client
from engine.mc.model import ModelParams
from engine.pricing.curve_builder import build_curve
from engine.pricing.pricer import price_trades
from products.portfolio import load_portfolio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKET, MODEL = Market.default(), ModelParams.default()
CURVE = dict(months=6, paths=24_576, seed=11, chunk_paths=2_048)  # 12 chunks


@pytest.fixture(scope="module")
def local_curve():
    return build_curve(MARKET, MODEL, **CURVE).to_dict()


@pytest.fixture(scope="module")
def client():
    c = dask_client(workers=2)
    yield c
    c.close()
    c.cluster.close()


class KillingRunner(DaskRunner):
    """Kills one worker process (SIGKILL) as soon as the first chunk's result is in."""

    killed = None

    def map(self, fn, items):
        for k, result in enumerate(super().map(fn, items)):
            if k == 0:
                pids = self.client.run(os.getpid)
                addr = sorted(pids)[-1]
                os.kill(pids[addr], signal.SIGKILL)
                KillingRunner.killed = addr
            yield result


def test_two_workers_give_the_local_curve(client, local_curve):
    assert len(client.scheduler_info()["workers"]) == 2
    assert build_curve(MARKET, MODEL, runner=DaskRunner(client), **CURVE).to_dict() == local_curve


def test_two_workers_give_the_local_sobol_curve(client):
    """Randomised QMC chunks are pure too: the scrambled points of a pair depend on the seed and
    the pair alone, wherever its chunk runs."""
    sobol = dict(CURVE, rng="sobol", scrambles=8)
    local = build_curve(MARKET, MODEL, **sobol).to_dict()
    assert build_curve(MARKET, MODEL, runner=DaskRunner(client), **sobol).to_dict() == local
    assert local != build_curve(MARKET, MODEL, **CURVE).to_dict()


def test_one_worker_gives_the_local_curve(local_curve):
    with dask_client(workers=1) as one:
        assert build_curve(MARKET, MODEL, runner=DaskRunner(one), **CURVE).to_dict() == local_curve
        one.cluster.close()


def test_a_worker_killed_mid_run_changes_nothing(client, local_curve):
    runner = KillingRunner(client, in_flight=6)
    assert build_curve(MARKET, MODEL, runner=runner, **CURVE).to_dict() == local_curve
    assert KillingRunner.killed is not None


def test_a_portfolio_priced_on_the_cluster_is_the_local_one(client):
    trades, _ = load_portfolio(os.path.join(ROOT, "examples", "portfolio.toml"))
    local = price_trades(trades, MARKET, MODEL, paths=8_000, seed=5, cash_flows=True).to_dict()
    assert price_trades(trades, MARKET, MODEL, paths=8_000, seed=5, cash_flows=True,
                        runner=DaskRunner(client)).to_dict() == local


def test_cli_workers_give_the_local_curve():
    from tests.test_cli import run_json

    local = run_json("curve", "--months", "3", "--paths", "4000", "--seed", "2")
    assert run_json("curve", "--months", "3", "--paths", "4000", "--seed", "2", "--workers", "2") == local


@pytest.mark.parametrize("args,field", [
    (["--workers", "0"], "workers"), (["--workers", "1", "--cluster", "tcp://127.0.0.1:9"], "workers"),
    (["--cluster", "not an address"], "cluster"), (["--cluster", "tcp://127.0.0.1:9"], "cluster")])
def test_cli_bad_cluster_options(args, field):
    from tests.test_cli import assert_one_line_error, invoke

    assert_one_line_error(invoke("curve", "--months", "2", "--paths", "1000", *args), field)
