"""pgfleet's Kubernetes invariants, enforced by the real engine against the real API server:
a server whose data is not protected, and a database server beside the components that no
NetworkPolicy admits, are each refused by the policy's name; the components as they are pass.
(The prod stack and the seeds' Kubernetes example are brought up with the pack as well.)"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi import automation as auto

from pgfleet.components.platform.kubernetes import KubernetesPlatform, KubernetesSettings
from pgfleet.components.shared_server import SharedServer, SharedServerArgs
from tests.support.cluster import Cluster
from tests.support.engine import POLICY_PACKS, program_stacks

IMAGE = "pgfleet/postgres:15"
NAMESPACE = f"pol-{secrets.token_hex(2)}"


@pytest.fixture
def previewed(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[[Callable[[], None]], auto.PreviewResult]]:
    """The preview of an inline program, with the pack, against the cluster (nothing created)."""
    with program_stacks(tmp_path) as make:
        yield lambda program: make(program).preview(policy_packs=POLICY_PACKS, on_output=print)


def server(protect: bool) -> SharedServer:
    platform = KubernetesPlatform("pol", KubernetesSettings(namespace=NAMESPACE, protect=protect))
    return SharedServer("main", SharedServerArgs(platform=platform, image=IMAGE, storage="1Gi"))


def test_a_server_whose_data_is_not_protected_is_refused_and_a_protected_one_passes(previewed) -> None:
    with pytest.raises(auto.CommandError) as refused:
        previewed(lambda: server(protect=False) and None)
    message = str(refused.value)
    assert "[mandatory]  prod-data-kept" in message, message
    assert "StatefulSet main-statefulset holds data and is not protected" in message
    kept = previewed(lambda: server(protect=True) and None)
    assert kept.change_summary.get("create", 0) > 5


def test_a_database_server_no_network_policy_admits_is_refused(previewed) -> None:
    def program() -> None:
        server(protect=True)
        labels = {"app.kubernetes.io/name": "postgres", "pgfleet.io/server": "reports"}
        k8s.apps.v1.StatefulSet(
            "reports", metadata={"name": "reports", "namespace": NAMESPACE},
            spec={"service_name": "reports", "selector": {"match_labels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "postgres", "image": IMAGE}]}}},
            opts=pulumi.ResourceOptions(protect=True))

    with pytest.raises(auto.CommandError) as refused:
        previewed(program)
    message = str(refused.value)
    assert "[mandatory]  database-servers-behind-network-policy" in message, message
    assert "StatefulSet reports is admitted by no ingress NetworkPolicy" in message
    assert "main-statefulset is admitted by no" not in message  # the component's own policy admits it
