from __future__ import annotations

import pytest

from tests.support.live import sweep_leftovers


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers_from_a_killed_run() -> None:
    """Nothing of this tier runs yet at session start: whatever carries its prefixes was left
    by a run that was killed before its teardown."""
    for name in sweep_leftovers():
        print(f"removed leftover {name}")
