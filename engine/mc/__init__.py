"""The numbers: model parameters, counter RNG, the fused kernel, the chunked simulation driver."""
