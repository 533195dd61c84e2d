"""Randomised quasi-Monte Carlo: scrambled Sobol points and a Brownian bridge for the daily shocks.

``Simulation(..., rng="sobol")`` draws the three diffusive factors' daily shocks (BTC, hashrate,
fee) from Sobol points instead of the counter RNG. One Sobol dimension per (factor, bridge step):
dimension ``3 k + f`` is step k of factor f's Brownian bridge, so the first coordinates fix each
factor's end point, the next its midpoint, and so on (a 36-month curve uses 3 x 1,096 of the
21,201 dimensions of the Joe-Kuo direction numbers that scipy ships). Jumps and the per-path
starting-hashrate draw stay on the counter RNG (:mod:`engine.mc.rng`).

Randomisation: ``R`` independent scrambles. Pair p belongs to scramble ``p mod R`` and is point
``p div R`` of it (points in Gray-code order: the first 2^m are the first 2^m of the sequence),
so every pair's shocks are a pure function of (seed, R, p), whatever the chunk, block or thread.
Each scramble is a nested uniform (Owen-type) scramble of every coordinate, made as in Burley's
"Practical hash-based Owen scrambling" (2020): reverse the 32 bits, apply the Laine-Karras hash
(an add and four multiply-xors by even constants: each bit is flipped by a function of the bits
below it, i.e. of the more significant digits of the point) keyed on a 32-bit word per
(seed, scramble, dimension) from the counter RNG, and reverse back. It preserves the net
structure: in each coordinate, the first 2^m points of a scramble fall one in each of 2^m bins.

A coordinate x (32 bits) becomes the normal of the 64-bit word ``x << 32 | 2^31`` through
:func:`engine.mc.rng.normal_from_bits`, i.e. of u = (x + 1/2) / 2^32 up to 2^-53: symmetric
(x and 2^32 - 1 - x give z and -z) and at most 6.2 in absolute value. The antithetic twin of each
pair keeps -z, as under the counter RNG.

>>> u = uniforms(seed=1, scrambles=4, scramble=0, first=0, count=8, n_dims=2)
>>> sorted((u[:, 0] * 8).astype(int).tolist())  # one point in each eighth
[0, 1, 2, 3, 4, 5, 6, 7]
"""

from __future__ import annotations

import functools
import importlib.resources
import math

import numpy as np
from numba import njit

from engine.mc import rng

BITS = 32
MAX_DIMS = 21_201  # Joe and Kuo's new-joe-kuo-6.21201 direction numbers
N_FACTORS = 3  # BTC, hashrate, fee: the factors with daily diffusive shocks
FACTOR_SCRAMBLE = 8  # counter factor id of the per-(scramble, dimension) scramble words
_HALF = np.uint64(0x80000000)
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # as engine.mc.block: the loops vectorise


def _joe_kuo(n_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Primitive polynomials and initial direction numbers of the first ``n_dims`` dimensions."""
    path = importlib.resources.files("scipy.stats") / "_sobol_direction_numbers.npz"
    with importlib.resources.as_file(path) as f, np.load(f) as z:
        return z["poly"][:n_dims].astype(np.int64), z["vinit"][:n_dims].astype(np.int64)


@functools.lru_cache(maxsize=4)
def direction_numbers(n_dims: int) -> np.ndarray:
    """``v[d, b]``: the 32-bit direction number of dimension d for index bit b (MSB-aligned), as
    uint64; the point of index i is the XOR of ``v[d, b]`` over the set bits b of i."""
    if not 1 <= n_dims <= MAX_DIMS:
        raise ValueError(f"Sobol points have 1..{MAX_DIMS} dimensions, asked for {n_dims}")
    poly, vinit = _joe_kuo(n_dims)
    m = np.array([int(p).bit_length() - 1 for p in poly])  # degree of each polynomial
    v = np.zeros((n_dims, BITS), dtype=np.int64)
    rows = np.arange(n_dims)
    for j in range(BITS):
        init = j < m
        if init.any():
            v[init, j] = vinit[init, j]
        rec = (j >= m) & (m > 0)
        r = rows[rec]
        mr = m[rec]
        new = v[r, j - mr]
        for k in range(int(m.max(initial=0))):
            use = k < mr
            bit = (poly[r] >> np.maximum(mr - 1 - k, 0)) & 1
            term = np.where(use & (bit == 1), v[r, np.maximum(j - k - 1, 0)] << (k + 1), 0)
            new = new ^ term
        v[r, j] = new
    v[0, :] = 1  # the first dimension: van der Corput
    v = v << (BITS - 1 - np.arange(BITS))[None, :]
    return v.astype(np.uint64)


@functools.lru_cache(maxsize=4)
def reversed_direction_numbers(n_dims: int) -> np.ndarray:
    """:func:`direction_numbers` with their 32 bits reversed (the scramble works on reversed bits)."""
    v = direction_numbers(n_dims)
    out = np.empty(v.shape, dtype=np.uint32)
    _reverse_all(v.ravel(), out.ravel())
    return out


@functools.lru_cache(maxsize=4)
def bridge(n_steps: int) -> tuple[np.ndarray, ...]:
    """A Brownian bridge over unit time steps 1..n (Jaeckel's construction, as QuantLib's
    ``BrownianBridge``), on an array ``W[0..n]`` with ``W[0] = 0``: variate k sets
    ``W[b[k]] = lw[k] W[lft[k]] + rw[k] W[rgt[k]] + sd[k] z_k``. Variate 0 sets W[n]; the daily
    shocks are ``W[t + 1] - W[t]``."""
    n = n_steps
    filled = np.zeros(n, dtype=np.int64)  # QuantLib's map over points 1..n (index t - 1)
    b = np.zeros(n, dtype=np.int64)
    lft = np.zeros(n, dtype=np.int64)
    rgt = np.zeros(n, dtype=np.int64)
    lw = np.zeros(n)
    rw = np.zeros(n)
    sd = np.zeros(n)
    filled[n - 1] = 1
    b[0], sd[0] = n, math.sqrt(n)
    j = 0
    for i in range(1, n):
        while filled[j]:
            j += 1
        k = j
        while not filled[k]:
            k += 1
        m = j + ((k - 1 - j) >> 1)  # point m + 1 is set from points j and k + 1
        filled[m] = i
        t_l, t_m, t_r = float(j), float(m + 1), float(k + 1)
        b[i], lft[i], rgt[i] = m + 1, j, k + 1
        lw[i] = (t_r - t_m) / (t_r - t_l)
        rw[i] = (t_m - t_l) / (t_r - t_l)
        sd[i] = math.sqrt((t_m - t_l) * (t_r - t_m) / (t_r - t_l))
        j = k + 1
        if j >= n:
            j = 0
    return b, lft, rgt, lw, rw, sd


def check_dims(n_days: int) -> None:
    """Raise ValueError when ``n_days`` of three factors need more Sobol dimensions than there are."""
    if N_FACTORS * n_days > MAX_DIMS:
        raise ValueError(f"Sobol points cover {MAX_DIMS // N_FACTORS} days of three factors, asked for {n_days}")


def kernel_tables(seed: int, scrambles: int, n_days: int) -> tuple:
    """What :func:`block_normals` needs besides the block: (R, reversed direction numbers,
    scramble words[R, dims], the bridge's six arrays)."""
    check_dims(n_days)
    n_dims = N_FACTORS * n_days
    words = scramble_words(np.int64(seed), np.int64(scrambles), np.int64(n_dims))
    return (int(scrambles), reversed_direction_numbers(n_dims), words) + bridge(n_days)


@njit(cache=True)
def scramble_words(seed, scrambles, n_dims):
    """The 32-bit key of each (scramble, dimension), from the counter RNG."""
    key = rng.seed_key(seed)
    out = np.empty((scrambles, n_dims), dtype=np.uint32)
    for s in range(scrambles):
        for d in range(n_dims):
            out[s, d] = np.uint32(rng.random_bits(key, rng.counter(s, d, FACTOR_SCRAMBLE)) >> np.uint64(32))
    return out


@njit(inline="always")
def _reverse32(x):
    """The 32 bits of the uint32 ``x`` in reverse order."""
    x = np.uint32(((x >> np.uint32(1)) & np.uint32(0x55555555)) | ((x & np.uint32(0x55555555)) << np.uint32(1)))
    x = np.uint32(((x >> np.uint32(2)) & np.uint32(0x33333333)) | ((x & np.uint32(0x33333333)) << np.uint32(2)))
    x = np.uint32(((x >> np.uint32(4)) & np.uint32(0x0F0F0F0F)) | ((x & np.uint32(0x0F0F0F0F)) << np.uint32(4)))
    x = np.uint32(((x >> np.uint32(8)) & np.uint32(0x00FF00FF)) | ((x & np.uint32(0x00FF00FF)) << np.uint32(8)))
    return np.uint32((x >> np.uint32(16)) | (x << np.uint32(16)))


@njit(cache=True)
def _reverse_all(x, out):
    for i in range(x.size):
        out[i] = _reverse32(np.uint32(x[i]))


@njit(inline="always")
def _owen(xr, word):
    """Nested uniform scramble of a point whose bits ``xr`` are reversed (Laine-Karras hash keyed on
    ``word``, as Burley 2020), returned in natural bit order (uint32 throughout: the loops over it
    vectorise on 32-bit lanes)."""
    x = np.uint32(xr + word)
    x ^= np.uint32(x * np.uint32(0x6C50B47C))
    x ^= np.uint32(x * np.uint32(0xB82F1E52))
    x ^= np.uint32(x * np.uint32(0xC7AFE638))
    x ^= np.uint32(x * np.uint32(0x8D22F6E6))
    return _reverse32(x)


@njit(inline="always")
def _ctz(i):
    """Trailing zero bits of i > 0 (0 for i = 0)."""
    c = 0
    while i > 0 and (i & 1) == 0:
        i >>= 1
        c += 1
    return c


@njit(inline="always")
def _point(vr, d, i):
    """Coordinate d (bits reversed, unscrambled) of the Sobol point of index i, in Gray-code order."""
    g = i ^ (i >> 1)
    x = np.uint32(0)
    b = 0
    while g:
        if g & 1:
            x ^= vr[d, b]
        g >>= 1
        b += 1
    return x


@njit(inline="always")
def _raw_row(p0, n, scrambles, vr, d, ctz, xb):
    """Reversed, unscrambled coordinate d of pairs p0..p0+n-1 into ``xb`` (Gray-code order: each
    scramble's first point of the block from its index, the next ones by one XOR each)."""
    for s in range(min(scrambles, n)):
        j = (s - p0) % scrambles
        if j >= n:
            continue
        x = _point(vr, d, (p0 + j) // scrambles)
        xb[j] = x
        j += scrambles
        while j < n:
            x ^= vr[d, ctz[j]]
            xb[j] = x
            j += scrambles


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def block_normals(p0, n, scrambles, vr, words, b, lft, rgt, lw, rw, sd, out):
    """The daily shocks of pairs p0..p0+n-1: ``out[t, f, j]`` (t < n_days = len(b), f < 3)."""
    n_days = b.size
    xb = np.empty(n, dtype=np.uint32)
    xs = np.empty(n, dtype=np.uint64)
    sid = np.empty(n, dtype=np.int64)
    ctz = np.zeros(n, dtype=np.int64)  # bit flipped from the previous point of the scramble
    for j in range(n):
        sid[j] = (p0 + j) % scrambles
        ctz[j] = _ctz((p0 + j) // scrambles)  # only read past each scramble's first point (index > 0)
    z = np.empty(n)
    w = np.empty((n_days + 1, n))
    for j in range(n):
        w[0, j] = 0.0
    for f in range(N_FACTORS):
        for k in range(n_days):
            d = N_FACTORS * k + f
            _raw_row(p0, n, scrambles, vr, d, ctz, xb)
            for j in range(n):  # two loops: one with both does not vectorise
                xs[j] = (np.uint64(_owen(xb[j], words[sid[j], d])) << np.uint64(32)) | _HALF
            for j in range(n):
                z[j] = rng.normal_from_bits(xs[j])
            lw_k, rw_k, sd_k = lw[k], rw[k], sd[k]
            bk, lk, rk = b[k], lft[k], rgt[k]
            for j in range(n):
                w[bk, j] = lw_k * w[lk, j] + rw_k * w[rk, j] + sd_k * z[j]
        for t in range(n_days):
            for j in range(n):
                out[t, f, j] = w[t + 1, j] - w[t, j]


@njit(cache=True)
def _uniform_points(first, count, scrambles, scramble, vr, words, scrambled, out):
    for c in range(count):
        for d in range(out.shape[1]):
            x = _point(vr, d, first + c)
            y = _owen(x, words[scramble, d]) if scrambled else _reverse32(x)
            out[c, d] = (np.float64(y) + 0.5) * (1.0 / 4294967296.0)


def uniforms(seed: int, scrambles: int, scramble: int, first: int, count: int, n_dims: int,
             scrambled: bool = True) -> np.ndarray:
    """Points first..first+count-1 of one scramble as uniforms (x + 1/2) / 2^32, ``(count, n_dims)``
    (for tests; ``scrambled=False``: the plain Sobol points)."""
    words = scramble_words(np.int64(seed), np.int64(scrambles), np.int64(n_dims))
    out = np.empty((count, n_dims))
    _uniform_points(first, count, scrambles, scramble, reversed_direction_numbers(n_dims), words, scrambled, out)
    return out


def normals(seed: int, scrambles: int, first_pair: int, n_pairs: int, n_days: int) -> np.ndarray:
    """The daily shocks ``[n_days, 3, n_pairs]`` of pairs first_pair.. as the kernel draws them."""
    tables = kernel_tables(seed, scrambles, n_days)
    out = np.empty((n_days, N_FACTORS, n_pairs))
    block_normals(first_pair, n_pairs, *tables, out)
    return out
