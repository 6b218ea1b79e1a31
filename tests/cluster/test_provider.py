"""The pulumi-kubernetes plugin the toolchain builds, driven by the real engine against the live
cluster: it creates, waits for readiness as it does against any cluster, and deletes."""
from __future__ import annotations

import secrets
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
from pulumi import automation as auto

from tests.support.cluster import POSTGRES_IMAGE, Cluster
from tests.support.engine import engine_env


def test_up_waits_for_a_ready_statefulset_and_destroy_removes_it(cluster: Cluster, tmp_path: Path) -> None:
    namespace = f"provider-{secrets.token_hex(3)}"

    def program() -> None:
        ns = k8s.core.v1.Namespace("ns", metadata={"name": namespace})
        opts = pulumi.ResourceOptions(depends_on=[ns])
        labels = {"app": "echo"}
        k8s.core.v1.ConfigMap("config", metadata={"namespace": namespace, "name": "echo"},
                              data={"greeting": "hello"}, opts=opts)
        sts = k8s.apps.v1.StatefulSet(
            "echo",
            metadata={"namespace": namespace, "name": "echo"},
            spec={
                "service_name": "echo",
                "replicas": 1,
                "selector": {"match_labels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{
                        "name": "echo", "image": POSTGRES_IMAGE, "image_pull_policy": "Never",
                        "command": ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep infinity"],
                        # ready only after a few seconds: `up` returning earlier would show here
                        "readiness_probe": {"exec_": {"command": ["test", "-e", "/tmp/ready"]},
                                            "period_seconds": 1},
                    }], "termination_grace_period_seconds": 1},
                },
            },
            opts=opts,
        )
        pulumi.export("ready_replicas", sts.status.ready_replicas)

    state = tmp_path / "state"
    state.mkdir()
    stack = auto.create_stack(
        stack_name="provider-smoke", project_name="pgfleet-provider-smoke", program=program,
        opts=auto.LocalWorkspaceOptions(work_dir=str(tmp_path), env_vars=engine_env(state)),
    )
    try:
        result = stack.up(on_output=print)
        assert result.outputs["ready_replicas"].value == 1
        live = cluster.apps.read_namespaced_stateful_set("echo", namespace)
        assert live.status.ready_replicas == 1
        assert cluster.core.read_namespaced_config_map("echo", namespace).data == {"greeting": "hello"}
        assert stack.preview().change_summary.get("same") == 4  # stack, ns, config map, statefulset
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(stack.name)
    phases = {ns.metadata.name: ns.status.phase for ns in cluster.core.list_namespace().items}
    assert phases.get(namespace) in (None, "Terminating")
