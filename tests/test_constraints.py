"""constraints.txt (the environment make install builds) agrees with pyproject.toml: every
dependency of the project and of its test and detect extras is pinned exactly once, at a version
pyproject allows. A dependency added to pyproject without a pin, or a pin outside pyproject's
range, would make the install fail or float."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip(
    "tomllib", reason="tomllib is in the standard library from Python 3.11"
)


def _pins() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins.setdefault(canonicalize_name(match[1]), []).append(match[2])
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in ("test", "detect"):
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def test_every_pin_is_exact_and_unique():
    pins = _pins()
    assert pins, "constraints.txt pins nothing"
    doubled = {name: versions for name, versions in pins.items() if len(versions) > 1}
    assert not doubled


def test_every_dependency_is_pinned_inside_its_range():
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name}: in pyproject.toml, not pinned in constraints.txt"
        (version,) = pins[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} in constraints.txt is outside pyproject's {req.specifier}"
        )


def test_the_makefile_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert installs
    assert all("-c constraints.txt" in line for line in installs), installs
