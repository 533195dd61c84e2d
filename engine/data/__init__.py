"""History files, the historical index, a market on a past day, the hashrate filter."""
