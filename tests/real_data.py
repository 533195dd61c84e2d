"""Where the real Bitcoin history lives beside the project, and a marker that skips without it."""

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DAILY_CSV = DATA_DIR / "btc_network_daily.csv"
EPOCHS_CSV = DATA_DIR / "btc_difficulty_epochs.csv"
needs_data = pytest.mark.skipif(not (DAILY_CSV.is_file() and EPOCHS_CSV.is_file()),
                                reason="shared/data not present")
