"""Imports run one way: curves <- products <- engine, and inside engine floor by floor
(mc, data, calibration, pricing, risk, backtest, app); nothing imports app."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("curves", "products", "engine")
FLOORS = ("mc", "data", "calibration", "pricing", "risk", "backtest", "app")


def imports(path: Path) -> set[str]:
    """Absolute module names a file imports (``from x import y`` gives x and x.y)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def sources():
    for layer in LAYERS:
        yield from sorted((ROOT / layer).rglob("*.py"))


def where(module: str):
    """(layer index, floor index or None) of a project module, or None for a library."""
    parts = module.split(".")
    if parts[0] not in LAYERS:
        return None
    floor = FLOORS.index(parts[1]) if parts[0] == "engine" and len(parts) > 1 and parts[1] in FLOORS else None
    return LAYERS.index(parts[0]), floor


def test_engine_has_only_floor_packages():
    flat = [p.name for p in (ROOT / "engine").glob("*.py") if p.name != "__init__.py"]
    assert flat == []
    assert {p.name for p in (ROOT / "engine").iterdir() if p.is_dir() and (p / "__init__.py").exists()} \
        <= set(FLOORS) | {"data"}


@pytest.mark.parametrize("path", list(sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    rel = path.relative_to(ROOT).with_suffix("")
    me = where(".".join(rel.parts))
    for module in imports(path):
        them = where(module)
        if them is None:
            continue
        assert them[0] <= me[0], f"{rel} imports {module}: {LAYERS[me[0]]} sits below {LAYERS[them[0]]}"
        if me[0] == them[0] == LAYERS.index("engine") and them[1] is not None:
            assert me[1] is not None and them[1] <= me[1], \
                f"{rel} imports {module}: floor {FLOORS[me[1]] if me[1] is not None else '?'} sits below " \
                f"{FLOORS[them[1]]}"


def test_the_checker_can_fail(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from engine.app import cli\nimport products.portfolio\n")
    assert {"engine.app", "engine.app.cli", "products.portfolio"} <= imports(bad)
    assert where("engine.app.cli") == (2, FLOORS.index("app"))
    assert where("curves.market") == (0, None) and where("numpy") is None
