"""Physical and market-implied calibration, quotes, shifts, Newey-West."""
