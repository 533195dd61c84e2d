"""Makes the numbers: model parameters, counter RNG, Numba kernels, simulation, pricing, CLI."""
