"""The chunk's fixing matrix: one column per simulated fixing some trade uses.

Column 0 is zeros (for fixings known today). Window fixings read the kernel's window averages;
the block-weighted difficulty is D x blocks over blocks (with a seasoned window's realised sums
added); epoch and reward fixings read the kernel's per-path values. Each window a trade uses
also gets its BTC average as a column: the engine's control variate.
"""

from __future__ import annotations

import numpy as np

from engine.mc import kernel as K
from engine.mc.simulation import QUANTITIES
from engine.pricing.fixing_plan import Source

QUANTITY_INDEX = {name: k for k, name in enumerate(QUANTITIES)}
EPOCH_FIELD = {"difficulty": K.EF_DIFFICULTY, "start_day": K.EF_START_DAY}


class ColumnSpace:
    """Columns of X, added as trades ask for them; :meth:`assemble` fills X for a chunk."""

    def __init__(self):
        self.windows: dict[tuple[int, int], int] = {}
        self.epochs: list[int] = []
        self.rewards: list[tuple[int, int]] = []
        self._cols: dict[tuple, int] = {("zero",): 0}

    @property
    def n_cols(self) -> int:
        return len(self._cols)

    def _window(self, lo_hi) -> int:
        return self.windows.setdefault(tuple(lo_hi), len(self.windows))

    def _col(self, key: tuple) -> int:
        return self._cols.setdefault(key, len(self._cols))

    def column(self, src: Source) -> int:
        if src.block == "const":
            return 0
        if src.block == "window":
            lo_hi, q = src.key
            return self._col(("w", self._window(lo_hi), QUANTITY_INDEX[q]))
        if src.block == "dpb":
            lo_hi, r_dxb, r_blocks = src.key
            return self._col(("dpb", self._window(lo_hi), r_dxb, r_blocks))
        if src.block == "epoch":
            k, q = src.key
            if k not in self.epochs:
                self.epochs.append(k)
            return self._col(("ep", k, EPOCH_FIELD[q]))
        if src.block == "reward":
            if src.key not in self.rewards:
                self.rewards.append(src.key)
            return self._col(("rw", src.key))
        raise ValueError(src.block)

    def btc_column(self, src: Source) -> tuple[int, int] | None:
        """(column of the BTC average over the source's simulated window, its days), if any."""
        if src.block not in ("window", "dpb"):
            return None
        lo, hi = src.key[0]
        return self._col(("w", self._window((lo, hi)), K.Q_BTC_USD)), hi - lo + 1

    def window_list(self) -> list[tuple[int, int]]:
        return sorted(self.windows, key=self.windows.get)

    def btc_forward_means(self, btc_forward: np.ndarray) -> np.ndarray:
        """Known means of the columns that are BTC window averages (NaN elsewhere)."""
        out = np.full(self.n_cols, np.nan)
        for (lo, hi), w in self.windows.items():
            c = self._cols.get(("w", w, K.Q_BTC_USD))
            if c is not None:
                out[c] = btc_forward[lo:hi + 1].mean()
        return out

    def assemble(self, wv: np.ndarray, ep: np.ndarray | None, rw: np.ndarray | None) -> np.ndarray:
        """X for a chunk: rows are paths, from the kernel's window, epoch and reward values (column
        by column in memory: each column is one fixing over the chunk's paths)."""
        rows = wv.shape[0]
        x = np.zeros((rows, self.n_cols), order="F")
        ep_pos = {k: r for r, k in enumerate(self.epochs)}
        rw_pos = {key: r for r, key in enumerate(self.rewards)}
        windows = self.window_list()
        plain = [(c, key[1] * K.N_QUANTITIES + key[2]) for key, c in self._cols.items() if key[0] == "w"]
        if plain:  # one gather for every plain window column
            cols, flat = np.array(plain).T
            x[:, cols] = wv.reshape(rows, -1)[:, flat]
        with np.errstate(all="ignore"):
            for key, c in self._cols.items():
                kind = key[0]
                if kind == "dpb":
                    w, r_dxb, r_blocks = key[1:]
                    lo, hi = windows[w]
                    n = hi - lo + 1
                    x[:, c] = (r_dxb + n * wv[:, w, K.Q_DIFF_X_BLOCKS]) / (r_blocks + n * wv[:, w, K.Q_BLOCKS])
                elif kind == "ep":
                    x[:, c] = ep[:, ep_pos[key[1]], key[2]]
                elif kind == "rw":
                    x[:, c] = rw[:, rw_pos[key[1]]]
        return x
