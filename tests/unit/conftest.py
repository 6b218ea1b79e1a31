"""The unit tier: Pulumi mocks, nothing on the machine changes."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def _home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # A dev stack's `up` writes the CA and the monitoring files under ~/.pgfleet: under mocks,
    # into a home of the module's own (module fixtures run stacks once), given back after it:
    # the tiers that follow in the same pytest find Pulumi's plugins in the real one.
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        yield home
