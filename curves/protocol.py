"""Bitcoin protocol math: subsidy schedule, difficulty retarget, hashvalue and hashprice.

Plain Python on scalars (no Numba import: commands that only need today's numbers start fast);
each function is self-contained, so the simulation kernel compiles its own copies
(``engine.mc.kernel``).

>>> round(hashprice_usd_per_ph_day(1e14, 3.125, 0.0, 100_000.0), 2)
62.86
>>> subsidy_sats(840_000)
312500000
>>> retarget_difficulty(100.0, 1_209_600.0 / 2)
200.0
"""

from curves.units import H_PER_PH, SATS_PER_BTC, SECONDS_PER_DAY, TWO_POW_32

BLOCK_INTERVAL_S = 600.0
RETARGET_BLOCKS = 2016
TARGET_TIMESPAN_S = 1_209_600.0  # 2016 * 600 s
MIN_TIMESPAN_S = TARGET_TIMESPAN_S / 4.0  # 302,400 s
MAX_TIMESPAN_S = TARGET_TIMESPAN_S * 4.0  # 4,838,400 s
HALVING_INTERVAL_BLOCKS = 210_000
INITIAL_SUBSIDY_SATS = 50 * SATS_PER_BTC

_HV_SCALE = SECONDS_PER_DAY * H_PER_PH / TWO_POW_32  # hashes per PH-day / 2^32


def subsidy_sats(height: int) -> int:
    """Block subsidy in integer satoshis at ``height``: 50 BTC >> floor(height / 210,000)."""
    halvings = height // HALVING_INTERVAL_BLOCKS
    if halvings >= 64:
        return 0
    return INITIAL_SUBSIDY_SATS >> halvings


def subsidy_btc(height: int) -> float:
    """Block subsidy in BTC at ``height``."""
    halvings = height // HALVING_INTERVAL_BLOCKS
    return 0.0 if halvings >= 64 else (INITIAL_SUBSIDY_SATS >> halvings) / SATS_PER_BTC


def next_halving_height(height: int) -> int:
    """First height of the next subsidy era strictly after ``height``."""
    return (height // HALVING_INTERVAL_BLOCKS + 1) * HALVING_INTERVAL_BLOCKS


def clamp_timespan_s(timespan_s: float) -> float:
    """Clamp an epoch's first-to-last-block time (2,015 intervals) to [T/4, 4T]."""
    return min(max(timespan_s, MIN_TIMESPAN_S), MAX_TIMESPAN_S)


def retarget_difficulty(difficulty: float, timespan_s: float) -> float:
    """Next epoch's difficulty: D * 1,209,600 s / T, with T clamped so D moves at most 4x."""
    return difficulty * TARGET_TIMESPAN_S / min(max(timespan_s, MIN_TIMESPAN_S), MAX_TIMESPAN_S)


def hashrate_hs_from_difficulty(difficulty: float) -> float:
    """Network hashrate (H/s) implied by difficulty at one block per 600 s."""
    return difficulty * TWO_POW_32 / BLOCK_INTERVAL_S


def difficulty_from_hashrate_hs(hashrate_hs: float) -> float:
    """Difficulty at which ``hashrate_hs`` finds one block per 600 s."""
    return hashrate_hs * BLOCK_INTERVAL_S / TWO_POW_32


def blocks_per_day(hashrate_hs: float, difficulty: float) -> float:
    """Expected blocks per day: H * 86,400 / (D * 2^32)."""
    return hashrate_hs * SECONDS_PER_DAY / (difficulty * TWO_POW_32)


def hashvalue_btc_per_ph_day(difficulty: float, subsidy_btc: float, fee_btc_per_block: float) -> float:
    """Expected BTC earned by 1 PH/s in one day: 86,400 * 1e15 * (subsidy + fee) / (D * 2^32)."""
    return _HV_SCALE * (subsidy_btc + fee_btc_per_block) / difficulty


def hashprice_usd_per_ph_day(
    difficulty: float, subsidy_btc: float, fee_btc_per_block: float, price_usd: float
) -> float:
    """Expected USD earned by 1 PH/s in one day: hashvalue * BTC/USD."""
    return _HV_SCALE * (subsidy_btc + fee_btc_per_block) / difficulty * price_usd


def hashvalue_btc_per_ph_day_array(difficulty, subsidy_btc_per_block, fee_btc_per_block):
    """NumPy-vectorised ``hashvalue_btc_per_ph_day`` (same formula and scale) for arrays."""
    import numpy as np

    reward_btc = np.asarray(subsidy_btc_per_block, float) + np.asarray(fee_btc_per_block, float)
    return _HV_SCALE * reward_btc / np.asarray(difficulty, float)
