"""The README's benchmark table is the rendering of the benchmark's JSON, figure for figure."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import readme_table  # noqa: E402


def test_readme_benchmark_table_is_rendered_from_the_json():
    res = json.loads((ROOT / "benchmarks" / "results" / "all.json").read_text())
    readme = (ROOT / "README.md").read_text()
    block = readme_table.render(res)
    assert block in readme, "stale: run python benchmarks/readme_table.py"
    assert readme.count(readme_table.BEGIN) == 1


def test_table_states_each_target_and_whether_it_is_met():
    res = json.loads((ROOT / "benchmarks" / "results" / "all.json").read_text())
    rows = readme_table.rows(res)
    targets = {r[2] for r in rows if r[2]}
    assert {"≥ 10×", "≤ 10 s", "≤ 0.5 s", "≤ 0.3 ×", "≤ 1.5×", "≤ 1 GB", "identical"} <= targets
    assert all(r[3] in ("met", "**not met**") for r in rows if r[2])
    ratio = res["curve"]["ratios_path_days_per_s"]["engine_2thr_vs_numpy"]
    assert next(r for r in rows if r[2] == "≥ 10×")[3] == ("met" if ratio >= 10 else "**not met**")
