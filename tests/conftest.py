import sys
from pathlib import Path

# The program's packages (components, stacks) and the test support, importable from any cwd.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gc

import pytest


@pytest.fixture(autouse=True)
def _collector_back_on():
    """`stacks.run()` switches the cyclic GC off for a program's short life; a test session
    runs many programs, so it comes back on after each test."""
    yield
    gc.enable()
