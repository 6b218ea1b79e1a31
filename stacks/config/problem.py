"""One problem with the config, by key path: what every check returns."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, at a key path such as 'services[2].name'."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
