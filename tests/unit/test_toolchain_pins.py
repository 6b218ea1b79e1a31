"""setup/versions.env builds each provider plugin under the version its pip SDK asks the engine
for: a pin that drifts from requirements.txt would leave the engine without its plugin."""
from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import re

import pytest

from tests.support.program import ROOT

PINS = dict(re.findall(r'^: "\$\{(\w+):=([^}]*)\}"', (ROOT / "setup" / "versions.env").read_text(), re.MULTILINE))


@pytest.mark.parametrize("provider", ["kubernetes", "random", "docker", "vault", "postgresql"])
def test_each_plugin_is_installed_under_the_version_its_sdk_asks_for(provider: str) -> None:
    plugin = json.loads((importlib.resources.files(f"pulumi_{provider}") / "pulumi-plugin.json").read_text())
    assert PINS[f"PROVIDER_{provider.upper()}_VERSION"] == plugin["version"]


def test_the_cli_is_at_least_the_sdk_it_runs() -> None:
    sdk = importlib.metadata.version("pulumi")

    def parts(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.lstrip("v").split("."))

    assert PINS["PULUMI_MIN_VERSION"].lstrip("v") == sdk
    assert parts(PINS["PULUMI_CLI_VERSION"]) >= parts(sdk)
