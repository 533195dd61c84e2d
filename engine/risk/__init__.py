"""Risk: the miner's hedge, cash flow at risk and sensitivities."""
