"""Delta to each quoted forward: bump the quote, re-bootstrap the hashrate drift shift on the same
random numbers, and reprice with the change it makes (the way rateslib reports risk against the
instruments a curve is calibrated to).

Every bootstrap (the base and one per bumped quote) runs on the same paths and seed, so the
map quotes -> shift is smooth and the change in the shift is the quote's own, not calibration
noise. The repricing then adds that change to the base shift: the base scenario is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from curves.market import Market
from curves.toml_io import InputError
from engine.calibration.implied import ImpliedCalibration, bootstrap_hashrate_shift
from engine.calibration.quotes import Quote
from engine.mc.model import ModelParams
from engine.risk.bumps import QUOTE_BUMP_USD_PER_PH_DAY, quotes_bumped


@dataclass(frozen=True)
class QuoteBump:
    """One quote's bump: the calibration with it moved (None when it fails, with ``error``)."""

    quote: Quote
    bumped: ImpliedCalibration | None
    error: str | None = None

    @property
    def bucket(self) -> str:
        window = f"{self.quote.start}..{self.quote.end}"
        return f"{self.quote.quote_id} {window}" if self.quote.quote_id else window


def bootstrap_quote_bumps(market: Market, model: ModelParams, quotes: Sequence[Quote], *, paths: int, seed: int,
                          threads: int | None = None, bump: float = QUOTE_BUMP_USD_PER_PH_DAY,
                          progress: Callable[[int, int], None] | None = None
                          ) -> tuple[ImpliedCalibration, list[QuoteBump]]:
    """The base calibration and one per quote moved by ``bump`` USD/PH/day; a bumped quote
    that cannot be calibrated is reported in its bump, the base must calibrate."""
    quotes = list(quotes)
    total = len(quotes) + 1
    base = bootstrap_hashrate_shift(market, model, quotes, paths=paths, seed=seed, threads=threads)
    if progress is not None:
        progress(1, total)
    out = []
    for k, q in enumerate(quotes):
        try:
            cal = bootstrap_hashrate_shift(market, model, quotes_bumped(quotes, k, bump), paths=paths, seed=seed,
                                           threads=threads)
            out.append(QuoteBump(q, cal))
        except InputError as exc:
            out.append(QuoteBump(q, None, f"quote bumped by {bump:g} USD/PH/day: {exc}"))
        if progress is not None:
            progress(k + 2, total)
    return base, out
