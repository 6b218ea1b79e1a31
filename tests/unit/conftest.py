"""The unit tier: Pulumi mocks, nothing on the machine changes."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # A dev stack's `up` writes the CA and the monitoring files under ~/.pgfleet: under mocks,
    # into a home of the tier's own (one for the session: module fixtures run stacks once).
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        yield home
