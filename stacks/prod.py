"""The prod stack: StatefulSets, headless Services, PDBs, NetworkPolicies and CronJobs."""
from __future__ import annotations

from collections.abc import Mapping

import pulumi

from pgfleet.components.platform.kubernetes import KubernetesPlatform, KubernetesSettings

from .compose import Deployment, build
from .config import StackConfig


def platform(stack: str, config: StackConfig) -> KubernetesPlatform:
    settings = config.kubernetes
    return KubernetesPlatform(
        stack,
        KubernetesSettings(
            namespace=settings.namespace,
            create_namespace=settings.create_namespace,
            services_namespace=settings.services_namespace,
            storage_class=settings.storage_class,
            admin_endpoints=dict(settings.admin_endpoints),
            admin_access=settings.admin_access,
            protect=config.protect_stateful,
        ),
    )


def deploy(stack: str, config: StackConfig, secrets: Mapping[str, pulumi.Output[str]]) -> Deployment:
    return build(stack, config, platform(stack, config), secrets)
