"""pgfleet's policy pack run by the real engine (through the language host's RunPlugin): small
programs built from the components, each breaking one invariant, are refused by the policy's
name, and the same programs keeping it pass. (Every live stack of the test tiers, dev, prod and
each example, is brought up with the pack too: tests/support/engine.py up_with_policies.) The
Kubernetes invariants are tests/cluster/test_policy_pack_on_kubernetes.py."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pytest
from pulumi import automation as auto

from pgfleet.components.platform.docker import DockerPlatform, DockerSettings
from pgfleet.components.shared_server import SharedServer, SharedServerArgs
from tests.support.engine import POLICY_PACKS, program_stacks

IMAGE = "pgfleet/postgres:15"
PREFIX = "pgfleet-pol-"


@pytest.fixture
def program_stack(tmp_path: Path) -> Iterator[Callable[[Callable[[], None]], auto.Stack]]:
    with program_stacks(tmp_path) as make:
        yield make


def server_on(bind_address: str) -> SharedServer:
    platform = DockerPlatform("pol", DockerSettings(network=f"{PREFIX}net", bind_address=bind_address, prefix=PREFIX))
    return SharedServer("main", SharedServerArgs(platform=platform, image=IMAGE, host_port=11990))


def refusal(run: Callable[[], object]) -> str:
    with pytest.raises(auto.CommandError) as refused:
        run()
    return str(refused.value)


def test_a_server_published_beyond_loopback_is_refused_and_on_loopback_passes(program_stack) -> None:
    message = refusal(lambda: program_stack(lambda: server_on("0.0.0.0") and None).preview(
        policy_packs=POLICY_PACKS, on_output=print))
    assert "[mandatory]  docker-ports-on-loopback" in message, message
    assert "is published on 0.0.0.0" in message
    kept = program_stack(lambda: server_on("127.0.0.1") and None).preview(policy_packs=POLICY_PACKS)
    assert kept.change_summary.get("create", 0) > 5  # the server's containers, volumes, provider, roles


def test_a_credential_in_a_containers_plain_env_is_refused(program_stack) -> None:
    def program() -> None:
        server = server_on("127.0.0.1")
        docker.Container("migrate", name=f"{PREFIX}migrate", image=IMAGE,
                         envs=["PGHOST=main", "PGPASSWORD=changeme"], opts=pulumi.ResourceOptions(depends_on=[server]))

    message = refusal(lambda: program_stack(program).preview(policy_packs=POLICY_PACKS))
    assert "[mandatory]  no-plain-credential-env" in message, message
    assert "envs sets PGPASSWORD in plain text" in message
    assert "docker-ports-on-loopback" not in message


def test_a_password_exported_in_plain_text_is_refused_on_up_and_a_secret_one_passes(program_stack) -> None:
    def exporting(plain: bool) -> Callable[[], None]:
        def program() -> None:
            password = random.RandomPassword("admin-password", length=24)
            pulumi.export("admin_password", pulumi.Output.unsecret(password.result) if plain else password.result)
        return program

    # Not known until the password exists: the preview passes, the update is refused at its end.
    leaky = program_stack(exporting(plain=True))
    leaky.preview(policy_packs=POLICY_PACKS)
    message = refusal(lambda: leaky.up(policy_packs=POLICY_PACKS))
    assert "[mandatory]  credentials-are-secret" in message, message
    assert "admin_password is a credential in plain text" in message
    kept = program_stack(exporting(plain=False)).up(policy_packs=POLICY_PACKS)
    assert kept.outputs["admin_password"].secret
