"""Hash, time and money units. Every public quantity carries its unit in its name.

>>> PH_PER_EH
1000.0
>>> hashrate_hs_from_ehs(1.0) == 1e18
True
"""

H_PER_TH = 1e12
H_PER_PH = 1e15
H_PER_EH = 1e18
TH_PER_PH = 1e3
PH_PER_EH = 1e3
TH_PER_EH = 1e6

SECONDS_PER_DAY = 86_400
SATS_PER_BTC = 100_000_000
TWO_POW_32 = 4_294_967_296.0


def hashrate_hs_from_ths(hashrate_ths: float) -> float:
    return hashrate_ths * H_PER_TH


def hashrate_hs_from_ehs(hashrate_ehs: float) -> float:
    return hashrate_ehs * H_PER_EH


def hashrate_ehs_from_hs(hashrate_hs: float) -> float:
    return hashrate_hs / H_PER_EH
