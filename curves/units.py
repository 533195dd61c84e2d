"""Hash, time and money units. Every public quantity carries its unit in its name.

>>> PH_PER_EH
1000.0
>>> H_PER_EH / H_PER_PH
1000.0
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
