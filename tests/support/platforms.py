"""Platforms for component tests."""
from __future__ import annotations

from typing import Any

from pgfleet.components.platform import Platform


def make_platform(kind: str, protect: bool = False, **settings: Any) -> Platform:
    if kind == "docker":
        from pgfleet.components.platform.docker import DockerPlatform, DockerSettings

        return DockerPlatform("test", DockerSettings(network="test-net", protect=protect))
    from pgfleet.components.platform.kubernetes import KubernetesPlatform, KubernetesSettings

    return KubernetesPlatform("test", KubernetesSettings(namespace="db", protect=protect, **settings))
