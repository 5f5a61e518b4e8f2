"""The README's feature x backend matrix (spikeforge.tools.matrix) is current and
honest: the README copy equals the generated block; every exact oracle it names
exists, takes the ``backend`` fixture and is collected for every available
backend; every property-test tag is one the generator is checked to draw
(tests/test_strategies.py); and every available backend builds each feature's
probe network exactly when it declares the feature lowered, agreeing with numpy."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_strategies import REQUIRED

import spikeforge as sf
from spikeforge.compare import compare
from spikeforge.registry import backends
from spikeforge.tools import matrix
from spikeforge.tools.validate import host_groups, simulate

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
README = ROOT / "README.md"
PROBE_STEPS = 20
BUILD_OPTIONS = {"cpu": {"opt": "-O1"}}  # same numerics as -O3 (no fast-math), faster compile
AVAILABLE = [s.name for s in sf.available() if s.available]


def test_readme_matrix_is_current():
    assert matrix.current_block(README.read_text()) == matrix.render(), (
        "README.md's feature matrix is stale: run "
        "python -m spikeforge.tools.matrix --write README.md")


def test_write_replaces_only_the_block_and_check_detects_staleness(tmp_path, capsys):
    path = tmp_path / "README.md"
    path.write_text(f"# title\n\nbefore\n{matrix.START}\n| old | table |\n{matrix.END}\nafter\n")
    assert matrix.main(["--check", str(path)]) == 1
    assert matrix.main(["--write", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"{matrix.END}\nafter\n")
    assert matrix.current_block(text) == matrix.render()
    assert matrix.main(["--check", str(path)]) == 0
    assert "stale" in capsys.readouterr().err


def test_replace_block_needs_markers():
    with pytest.raises(ValueError, match="matrix:start"):
        matrix.replace_block("no markers here", "x")


def test_columns_are_the_registry_reference_first():
    names = [name for name, _ in matrix.columns()]
    assert names[0] == "numpy" and sorted(names) == sorted(backends())
    header = matrix.render().splitlines()[1]
    assert all(f"`{name}`" in header for name in names)


def test_every_registered_backend_declares_valid_levels():
    keys = set(matrix.BY_KEY) | {"*"}
    for name, cls in backends().items():
        table = getattr(cls, "verification", None)
        assert isinstance(table, dict), f"backend {name!r} has no verification declaration"
        assert set(table) <= keys, f"{name}: unknown feature keys {set(table) - keys}"
        assert set(table.values()) <= set(matrix.LEVELS), f"{name}: {table}"
        for key, level in table.items():  # an explicit "exact" needs an oracle to stand on
            assert level != "exact" or key == "*" or matrix.BY_KEY[key].oracles, (name, key)
    assert "untested" not in matrix.render() and "?" not in matrix.render().split("\n\n")[0]


def _test_functions() -> dict[str, ast.FunctionDef]:
    out = {}
    for path in TESTS.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out[f"{path.name}::{node.name}"] = node
    return out


def test_oracles_exist_and_run_per_backend():
    functions = _test_functions()
    for feature in matrix.FEATURES:
        for oracle in feature.oracles:
            assert oracle in functions, f"{feature.key}: no test {oracle}"
            args = [a.arg for a in functions[oracle].args.args]
            assert "backend" in args, f"{oracle} does not take the backend fixture"


def test_oracles_are_collected_for_every_available_backend():
    """The exact oracles really run on cpu (and any other available backend)."""
    oracles = {o for f in matrix.FEATURES for o in f.oracles}
    files = sorted({o.split("::")[0] for o in oracles})
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *(f"tests/{f}" for f in files)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    collected = {}
    for line in out.splitlines():
        match = re.fullmatch(r"tests/(\S+?)(?:\[(.*)\])?", line.strip())
        if match:
            collected.setdefault(match.group(1), set()).update(
                re.split(r"-", match.group(2) or ""))
    for oracle in oracles:
        missing = set(AVAILABLE) - collected.get(oracle, set())
        assert not missing, f"{oracle} is not collected for {sorted(missing)}"


def test_property_tags_are_drawn_by_the_generator():
    for feature in matrix.FEATURES:
        assert set(feature.tags) <= REQUIRED, (feature.key, set(feature.tags) - REQUIRED)


@pytest.mark.parametrize("feature", matrix.FEATURES, ids=[f.key for f in matrix.FEATURES])
def test_probe_builds_exactly_when_declared(backend, feature):
    level = matrix.declared(backends()[backend], feature.key)
    network = feature.probe()
    if level == "no":
        with pytest.raises(NotImplementedError):
            network.build(backend=backend)
        return
    sim = network.build(backend=backend, **BUILD_OPTIONS.get(backend, {}))
    if level == "compile-only":
        return
    sim.run(steps=PROBE_STEPS, progress=False)
    for group in host_groups(network):
        sim.custom_update(group)
    if backend != "numpy":
        report = compare(simulate(network, "numpy", PROBE_STEPS), sim)
        assert report.ok, report.failures()


def test_probes_exercise_their_feature():
    """Each probe carries its feature's property tags where the tag describes a network
    (sanity check that the probe tests what its row says)."""
    from spikeforge.testing import features

    for feature in matrix.FEATURES:
        if feature.tags:
            tags = features(feature.probe())
            assert tags & set(feature.tags), (feature.key, sorted(tags))
