"""Counter-based random numbers keyed on (seed, pair, step, factor).

Every draw is a pure function of its key, so results do not depend on thread count, chunk size
or machine count. The mixer is SplitMix64's finaliser applied to ``key * golden_gamma + seed_key``;
normals come from Acklam's inverse CDF (relative error < 1.2e-9) with both branches evaluated
and one selected, so every loop over draws vectorises; ``exp`` and ``log`` are branch-free too.

>>> z = normals(seed=7, n_pairs=100_000, step=0, factor=0)
>>> bool(abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02)
True
"""

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_UNIT = 1.0 / 9007199254740993.0  # 1 / (2^53 + 1): maps 53 bits to the open interval (0, 1)

# factor ids in the counter (8 bits); jump sizes use their own ids
FACTOR_BTC, FACTOR_HASHRATE, FACTOR_FEE, FACTOR_JUMP_FLAGS = 0, 1, 2, 3
FACTOR_JUMP_SIZE_BTC, FACTOR_JUMP_SIZE_HASHRATE, FACTOR_JUMP_SIZE_FEE = 4, 5, 6
FACTOR_START_HASHRATE = 7  # the per-path draw of today's hashrate, at step 0
JUMP_FLAG_BITS = 21  # each of the 3 jump flags uses 21 bits of one 64-bit word
JUMP_FLAG_SCALE = float(1 << JUMP_FLAG_BITS)

_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
P_LOW = 0.02425  # Acklam's tail branch below this, and above 1 - P_LOW

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238
_LN2_LO = 1.9082149292705877e-10
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # the bits of sqrt(1/2)


@njit(inline="always")
def mix64(x):
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@njit(inline="always")
def seed_key(seed):
    return mix64(np.uint64(seed) * GOLDEN_GAMMA + np.uint64(0x5EED))


@njit(inline="always")
def counter(pair, step, factor):
    """Unique 64-bit counter: pair < 2^32, step < 2^24, factor < 2^8."""
    return (np.uint64(pair) << np.uint64(32)) | (np.uint64(step) << np.uint64(8)) | np.uint64(factor)


@njit(inline="always")
def random_bits(key, ctr):
    return mix64(ctr * GOLDEN_GAMMA + key)


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a register move; vectorises)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


@intrinsic
def _bits_from_float(typingctx, x):
    """The IEEE-754 bits of the float64 ``x`` as an int64 (a register move; vectorises)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@njit(inline="always")
def exp(x):
    """exp(x) as 2^k * p(r) with |r| <= ln 2 / 2: branch-free, SIMD-friendly, |rel err| < 1e-15.

    Arguments are clamped to [-700, 700] (the simulation's log levels stay far inside)."""
    x = min(max(x, -700.0), 700.0)
    k = np.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (
        1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0 + r * (1.0 / 40320.0 + r * (
            1.0 / 362880.0 + r * (1.0 / 3628800.0 + r * (1.0 / 39916800.0 + r / 479001600.0)))))))))))
    return p * _float_from_bits((np.int64(k) + 1023) << 52)


@njit(inline="always")
def log(x):
    """ln(x) for normal, positive, finite x: branch-free, SIMD-friendly, |abs err| < 4e-16 * (1 + |ln x|).

    x = 2^e * m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172."""
    bits = _bits_from_float(x)
    e = (bits - _SQRT_HALF_BITS) >> 52  # exponent, shifted so the mantissa lands in [sqrt(1/2), sqrt(2))
    m = _float_from_bits(bits - (e << 52))
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    poly = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (
        1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0 + s2 / 19.0))))))))
    ef = np.float64(e)
    return ef * _LN2_HI + (2.0 * s * poly + ef * _LN2_LO)


@njit(inline="always")
def normal_from_bits(bits):
    """A standard normal from 64 random bits: Acklam's inverse CDF (relative error < 1.2e-9),
    both branches evaluated and one selected (no data-dependent branch: the loop vectorises).

    The 53 high bits k give u = (k + 1) / (2^53 + 1); the lower half is mapped through
    v = u and the upper through v = 1 - u, computed exactly from k, so z(k) = -z(2^53 - 1 - k)
    bit for bit. The smallest v is 1 / (2^53 + 1): |z| reaches 8.2."""
    k = bits >> np.uint64(11)
    lower = k < np.uint64(1 << 52)
    v = np.float64(k + np.uint64(1) if lower else np.uint64(1 << 53) - k) * _UNIT  # min(u, 1 - u)
    q = v - 0.5
    r = q * q
    num_c = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
    den_c = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0
    s = np.sqrt(-2.0 * log(v))
    num_t = ((((_C[0] * s + _C[1]) * s + _C[2]) * s + _C[3]) * s + _C[4]) * s + _C[5]
    den_t = (((_D[0] * s + _D[1]) * s + _D[2]) * s + _D[3]) * s + 1.0
    tail = v < P_LOW
    z = (num_t if tail else num_c) / (den_t if tail else den_c)
    return z if lower else -z


@njit(cache=True)
def normal_array(bits, out):
    """out[i] = normal_from_bits(bits[i]) (for tests)."""
    for i in range(bits.size):
        out[i] = normal_from_bits(bits[i])


@njit(cache=True)
def exp_array(x, out):
    """out[i] = exp(x[i]) (for tests)."""
    for i in range(x.size):
        out[i] = exp(x[i])


@njit(cache=True)
def log_array(x, out):
    """out[i] = log(x[i]) (for tests)."""
    for i in range(x.size):
        out[i] = log(x[i])


@njit(cache=True)
def normals(seed, n_pairs, step, factor):
    """Standard normals for pairs 0..n_pairs-1 at one (step, factor); for tests and references."""
    key = seed_key(seed)
    out = np.empty(n_pairs)
    for j in range(n_pairs):
        out[j] = normal_from_bits(random_bits(key, counter(j, step, factor)))
    return out
