"""Out-of-sample checks: the rolling backtest, forecast scores, the epoch report."""
