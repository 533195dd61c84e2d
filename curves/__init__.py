"""What the market and the protocol say today: units, protocol math, market snapshot, curves."""
