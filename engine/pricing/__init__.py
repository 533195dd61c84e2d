"""Pricing trades and building curves from the Monte Carlo engine."""
