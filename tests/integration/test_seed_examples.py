"""Two seed systems for real: one shared server (seed 001), one server per service (seed 000)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import live as checks
from tests.support.engine import throwaway_stack
from tests.support.live import Live, isolated
from tests.support.program import stack_config

# example -> (port offset, the servers it must run)
EXAMPLES = {
    "shared-postgres": (21000, {"shared_postgres"}),
    "game-platform": (22000, {"auth", "user", "chat", "game", "notification"}),
}


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    name = request.param
    prefix = f"pgfleet-it-{name}-"
    config = isolated(stack_config(f"examples/{name}.yaml"), prefix, EXAMPLES[name][0])
    with throwaway_stack(tmp_path_factory.mktemp(name), f"it-{name}", config) as stack:
        yield Live(stack, stack.up(on_output=print), prefix)


def test_topology_is_the_seeds(live: Live) -> None:
    name = live.prefix.removeprefix("pgfleet-it-").rstrip("-")
    assert set(live.servers) == EXAMPLES[name][1]
    assert {info["server"] for info in live.services.values()} == EXAMPLES[name][1]


def test_isolation_on_the_live_system(live: Live) -> None:
    checks.check_apps_use_what_their_migrators_create(live)
    n = len(live.services)
    assert checks.check_no_service_reaches_another(live) == n * (n - 1)
    checks.check_app_roles_are_least_privileged(live)
    checks.check_public_has_no_connect(live)


def test_each_approle_reads_only_its_own_path(live: Live) -> None:
    checks.check_approles_read_only_their_own_path(live)


def test_second_preview_shows_no_changes(live: Live) -> None:
    checks.check_second_preview_is_empty(live)
