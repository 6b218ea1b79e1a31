"""The settings catalogue (stacks/config/postgres15.json) against the live image it describes.

Config validation refuses server settings and libraries from the catalogue; these tests keep it
true: regenerated from `pgfleet/postgres:15` it must equal the committed file, and for every
numeric setting's bounds, each unit, every enum value and a set of wrong spellings, the server
itself must accept exactly what `value_problem` accepts. Only `docker run --rm`: no stack.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from pgfleet.stacks.config.catalogue import (
    BACKEND_SETTINGS,
    Catalogue,
    Setting,
    _units,
    backends_problem,
    catalogue,
    value_problem,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "stacks" / "config" / "postgres15.json"
INT_MAX = 2**31 - 1


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("describe_postgres_image", ROOT / "setup" / "describe-postgres-image.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def committed() -> Catalogue:
    found = catalogue(15)
    assert found is not None, f"{COMMITTED} is missing"
    return found


def test_committed_catalogue_is_what_the_image_says() -> None:
    describe = generator()
    live = describe.dumps(describe.describe(describe.IMAGE))
    assert json.loads(live) == json.loads(COMMITTED.read_text()), (
        f"the image and {COMMITTED.name} differ: python3 setup/describe-postgres-image.py --write {COMMITTED}")
    assert live == COMMITTED.read_text()


def test_the_image_preloads_what_pgfleet_preloads_by_default(committed: Catalogue) -> None:
    from pgfleet.stacks.config import ServerSettings

    assert set(ServerSettings().extensions) <= committed.libraries
    assert "pg_stat_statements" in committed.libraries and "nonexistent_lib" not in committed.libraries


def _cases(setting: Setting) -> list[str]:
    """Values at and past each bound, in each unit, every enum value and some wrong spellings."""
    values = ["", "abc", "1 1"]
    if setting.type in ("integer", "real") and setting.min is not None and setting.max is not None:
        for bound, step in ((setting.min, -1), (setting.max, 1)):
            if abs(bound) <= INT_MAX:
                number = int(bound) if bound.is_integer() else bound
                values += [str(number), str(number + step)]
        values += ["1.5", "1e3", "0x10", "0x1.8p1", "-0", "1e", ".5"]
        for unit in _units(setting) or {}:
            values += [f"1{unit}", f"3 {unit}", f"1{unit.upper()}"]
        if _units(setting) is None:
            values.append("1kB")
    elif setting.type == "bool":
        values += ["on", "OFF", "t", "tr", "y", "n", "no", "o", "of", "1", "0", "2", "truex"]
    elif setting.type == "enum":
        values += [*setting.values, *(v.upper() for v in setting.values), *setting.aliases, "on", "2"]
    return list(dict.fromkeys(values))


def takes(committed: Catalogue, name: str, value: str) -> bool:
    """Config validation's verdict, with the other settings at their defaults as on the server."""
    if name not in committed.settings or value_problem(committed.settings[name], value) is not None:
        return False
    if name not in BACKEND_SETTINGS:
        return True
    counts = {other: committed.number(other) for other in BACKEND_SETTINGS}
    return backends_problem({**counts, name: committed.number(name, value)}) is None


def test_values_are_refused_exactly_when_the_server_refuses_them(committed: Catalogue) -> None:
    # every setting but the strings (their check hooks are not modelled)
    cases = [(name, value) for name, setting in sorted(committed.settings.items())
             if setting.type != "string" for value in _cases(setting)]
    cases += [("no_such_setting", "1"), ("shared_bufers", "128MB")]
    describe = generator()
    with describe.running(describe.IMAGE) as (container, _):
        server = describe.server_takes(container, cases)
    ours = [takes(committed, name, value) for name, value in cases]
    disagree = [(name, value, "server takes it" if s else "server refuses it")
                for (name, value), s, o in zip(cases, server, ours, strict=True) if s != o]
    assert not disagree, f"{len(disagree)} of {len(cases)} verdicts differ: {disagree[:40]}"
    assert sum(server) > 100 and len(server) - sum(server) > 100, "both verdicts are exercised"
