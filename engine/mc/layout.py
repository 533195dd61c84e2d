"""Array layouts shared by the simulation kernel and its callers: column, row and parameter
indices of the kernel's inputs and outputs (``engine.mc.kernel`` re-exports them)."""

# per-day inputs: columns of ``steps``
S_BTC_DRIFT, S_BTC_VOL, S_HASHRATE_SHIFT, S_LOG_COST = 0, 1, 2, 3
N_STEP_INPUTS = 4
# scalar parameters: entries of ``par`` (per-day units); each jump's (threshold, mean, std) are
# consecutive, BTC then hashrate then fee (the kernel steps through them in that order)
(P_H_VOL, P_H_GROWTH, P_H_FEEDBACK, P_EMA_WEIGHT, P_F_KAPPA, P_F_LEVEL, P_F_VOL,
 P_L10, P_L11, P_L20, P_L21, P_L22,
 P_JS_THRESHOLD, P_JS_MEAN, P_JS_STD, P_JH_THRESHOLD, P_JH_MEAN, P_JH_STD,
 P_JF_THRESHOLD, P_JF_MEAN, P_JF_STD, P_FEEDBACK_EVERY_DAYS, P_JH_RECOVERY) = range(23)
N_PARAMS = 23
# initial state: entries of ``init``
(I_LOG_BTC, I_LOG_HASHRATE_HS, I_LOG_FEE, I_DIFFICULTY, I_HEIGHT, I_EPOCH_BLOCKS,
 I_EPOCH_SECONDS, I_HASHPRICE_EMA, I_LOG_HASHRATE_SD, I_INDEX_REF_USD) = range(10)
N_INIT = 10
# window quantities (averages per day over each window); D x blocks over blocks is the
# block-weighted difficulty
Q_HASHPRICE_USD, Q_HASHVALUE_BTC, Q_DIFFICULTY, Q_BTC_USD, Q_BLOCKS, Q_DIFF_X_BLOCKS = range(6)
N_QUANTITIES = 6
# per-path epoch fixings: difficulty and start day (fractional day index) of a requested epoch
EF_DIFFICULTY, EF_START_DAY = range(2)
N_EPOCH_FIXINGS = 2
# per-day moments of antithetic pair means
(D_HP, D_HP2, D_HV, D_HV2, D_BTC, D_BTC2, D_HP_BTC, D_DIFF) = range(8)
N_DAILY = 8
# window pair-mean moment sums: x, x^2, control c (window BTC average), c^2, x*c; then the
# block's central sums of x: (x - block mean)^2, ^3, ^4 (sample-quality checks, engine.mc.moments)
M_X, M_XX, M_C, M_CC, M_XC, M_X2C, M_X3C, M_X4C = range(8)
N_MOMENTS = 8
# per-epoch sums per block, antithetic pairs as the units: x = members of the pair that reach
# the epoch (0, 1 or 2), y = the sum over them of D_k / D_0 - 1; start time s = fractional day index
(E_COUNT, E_REL, E_REL2, E_REL_COUNT, E_COUNT2, E_DAY, E_DAY2) = range(7)
N_EPOCH_SUMS = 7  # sums of x, y, y^2, x*y, x^2, s, s^2
# per-day histograms: quantities, and the two ends of a histogram's exact range
H_INDEX_USD, H_DIFFICULTY = range(2)
N_DAY_HIST = 2
R_MIN, R_MAX = range(2)
# sample-path fields
(SP_HASHPRICE_USD, SP_BTC_USD, SP_DIFFICULTY, SP_HASHRATE_HS, SP_FEE_BTC_PER_BLOCK,
 SP_BLOCKS) = range(6)
N_SAMPLE_FIELDS = 6

# per-path state of a block, by how often it changes (one array each, one column per path):
# logs (every day), levels (every day), the epoch clock (every day), the protocol state (at
# retargets and halvings) and the hashprice feedback
LG_BTC, LG_HASHRATE, LG_HASHRATE_OUT, LG_FEE = range(4)
N_LG = 4
LV_BTC, LV_HASHRATE, LV_FEE = range(3)
N_LV = 3
CK_EPOCH_BLOCKS, CK_HEIGHT, CK_EPOCH_SECONDS, CK_EVENT = range(4)
N_CK = 4
PR_DIFFICULTY, PR_INV_DIFFICULTY, PR_SUBSIDY, PR_HALVING_AT, PR_T_FIRST, PR_CUM_SD = range(6)
N_PR = 6
FB_EMA, FB_DRIFT = range(2)
N_FB = 2
