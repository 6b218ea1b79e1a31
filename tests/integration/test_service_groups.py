"""Service groups for real: a platform stack with `service_groups: 2`, brought up with its two
group stacks by `pgfleet-fleet up` on Docker. The isolation checks across the groups, a change
to one service that runs its group alone, the previews, the refusal of a changed group count,
and `pgfleet-fleet destroy`."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pgfleet.stacks import outputs
from pgfleet.stacks.config.groups import group_of
from tests.support.fleet import FleetProject, fleet_project
from tests.support.live import (
    Live,
    check_apps_use_what_their_migrators_create,
    check_approles_read_only_their_own_path,
    check_no_service_reaches_another,
    connect,
    isolated,
    sweep_leftovers,
)

PREFIX = "pgfleet-it-grp-"
GROUPS = 2
SERVICES = ["orders", "billing", "inventory", "search", "mailer"]
CONFIG = isolated({
    "platform": "docker",
    "servers": [{"name": "shared", "port": 15432, "metrics": {"enabled": False}}],
    "services": [{"name": name, "connection_limit": 10} for name in SERVICES],
    "service_groups": GROUPS,
    "backup": {"enabled": False},
}, PREFIX, port_offset=11500)


def home(fleet: FleetProject, service: str) -> str:
    return fleet.group_stack(group_of(service, GROUPS))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetProject]:
    for leftover in sweep_leftovers(PREFIX):
        print(f"removed leftover {leftover}")
    with fleet_project(tmp_path_factory.mktemp("groups"), "it-grp", CONFIG) as made:
        yield made


@pytest.fixture(scope="module")
def live(fleet: FleetProject) -> Live:
    """The fleet up, and one Live of the platform with every group's service outputs merged in."""
    result = fleet.run("up")
    assert result.returncode == 0, result.stderr
    ran = fleet.actions(result)
    assert ran[fleet.platform] == "up"
    assert {ran[fleet.group_stack(k)] for k in range(GROUPS)} == {"up"}
    return Live(fleet.platform_stack(), fleet.merged_outputs(GROUPS), PREFIX)


def test_each_service_lives_in_its_group_stack_and_none_in_the_platforms(fleet: FleetProject, live: Live) -> None:
    assert sorted(live.services) == sorted(SERVICES)
    for service in SERVICES:
        assert service in fleet.outputs(home(fleet, service))[outputs.SERVICES]
    platform_state = json.dumps(live.stack.export_stack().deployment)
    assert "postgresql:index/database:Database" not in platform_state
    assert "pgfleet:index:ServerConnection" not in platform_state


def test_services_in_different_groups_are_isolated_as_in_one_stack(live: Live) -> None:
    assert {live.services[s]["server"] for s in SERVICES} == {"shared"}
    assert len({group_of(s, GROUPS) for s in SERVICES}) == GROUPS, "the services must span both groups"
    check_apps_use_what_their_migrators_create(live)  # each service's own roles are admitted
    assert check_no_service_reaches_another(live) == len(SERVICES) * (len(SERVICES) - 1)
    check_approles_read_only_their_own_path(live)


def test_no_group_state_holds_the_admin_password_in_plain_text(fleet: FleetProject, live: Live) -> None:
    for k in range(GROUPS):
        exported = fleet.pulumi("stack", "export", "-s", fleet.group_stack(k))
        assert "ciphertext" in exported
        for password in live.admin_passwords.values():
            assert password not in exported
        for url in live.urls.values():
            assert url["url"].split(":")[2].split("@")[0] not in exported


def test_a_change_to_one_service_runs_its_group_alone(fleet: FleetProject, live: Live) -> None:
    changed = json.loads(json.dumps(CONFIG))
    changed["services"][SERVICES.index("search")]["connection_limit"] = 12
    fleet.set_config(changed)
    result = fleet.run("up")
    assert result.returncode == 0, result.stderr
    ran = fleet.actions(result)
    changed_group = home(fleet, "search")
    assert ran[changed_group] == "up"
    assert all(action == "skipped" for stack, action in ran.items() if stack not in (changed_group, fleet.platform)), ran
    with connect(live.admin("search")) as admin:
        (limit,) = admin.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'search_user'").fetchone()
    assert limit == 12
    # nothing changed since: a preview skips every group; --all previews each, and none has a change
    quiet = fleet.run("preview")
    assert quiet.returncode == 0 and all(
        action == "skipped" for stack, action in fleet.actions(quiet).items() if stack != fleet.platform)
    everything = fleet.run("preview", "--all")
    assert everything.returncode == 0 and {fleet.actions(everything)[fleet.group_stack(k)]
                                           for k in range(GROUPS)} == {"preview"}


def test_a_changed_group_count_is_refused_before_anything_runs(fleet: FleetProject, live: Live) -> None:
    regrouped = json.loads(json.dumps(CONFIG))
    regrouped["service_groups"] = 3
    moved = [s for s in SERVICES if group_of(s, 3) != group_of(s, GROUPS)]
    assert moved
    fleet.set_config(regrouped)
    try:
        result = fleet.run("up")
    finally:
        fleet.set_config(CONFIG)
    assert result.returncode == 1
    assert "would move services between group stacks" in result.stderr and moved[0] in result.stderr
    assert result.stdout.strip() == "", "nothing may run"
    # the services are where they were, still reachable
    check_apps_use_what_their_migrators_create(live)
