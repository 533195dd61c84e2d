"""Risk: Greeks by bump and reprice on common random numbers, a risk ladder, a scenario grid."""
