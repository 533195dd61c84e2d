"""Risk: the miner's hedge and cash flow at risk; Greeks by bump and reprice on common random
numbers, a risk ladder and a scenario grid."""
