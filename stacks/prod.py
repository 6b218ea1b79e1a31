"""The prod stack: StatefulSets, headless Services, PDBs, NetworkPolicies and CronJobs."""
from __future__ import annotations

from collections.abc import Mapping

import pulumi

from pgfleet.components.platform.kubernetes import KubernetesPlatform, KubernetesSettings, Monitoring
from pgfleet.observability import MonitoringPlan
from pgfleet.observability.dashboards import dashboard_folder, dashboards
from pgfleet.observability.rules import rule_groups
from pgfleet.observability.scrape import kubernetes_job, server_relabelling

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


def monitoring(plan: MonitoringPlan) -> Monitoring:
    return Monitoring(
        dashboards=dashboards(plan),
        folder=dashboard_folder(plan),
        rule_groups=rule_groups(plan),
        scrape_job=kubernetes_job(plan),
        relabelling=server_relabelling(plan),
        interval=plan.scrape_interval,
        operator=plan.kubernetes_discovery == "operator",
    )


def deploy(stack: str, config: StackConfig, secrets: Mapping[str, pulumi.Output[str]]) -> Deployment:
    kubernetes = platform(stack, config)
    deployment = build(stack, config, kubernetes, secrets)
    if deployment.monitoring is not None and deployment.monitoring.servers:
        kubernetes.publish_monitoring(f"{stack}-monitoring", monitoring(deployment.monitoring), pulumi.ResourceOptions())
    return deployment
