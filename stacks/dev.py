"""The dev stack: every server, pooler, exporter, Redis and Vault as Docker containers."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pulumi

from pgfleet.components.platform.docker import DockerPlatform, DockerSettings
from pgfleet.observability import MonitoringPlan
from pgfleet.observability.files import DASHBOARDS, monitoring_files

from .compose import Deployment, build, local_directory
from .config import StackConfig


def platform(stack: str, config: StackConfig) -> DockerPlatform:
    settings = config.docker
    return DockerPlatform(
        stack,
        DockerSettings(
            network=settings.network,
            bind_address=settings.bind_address,
            protect=config.protect_stateful,
            prefix=settings.prefix,
        ),
    )


def _write(target: Path, content: str) -> None:
    """A file on this machine, rewritten only when its content changes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != content:
        target.write_text(content)


def _write_local_ca(path: str, certificate: str | None) -> str:
    # The CA is public; local_url names this file, so a developer's client verifies the server.
    if certificate:  # else not issued (yet): nothing to write
        _write(Path(path), certificate)
    return path


def monitoring_directory(config: StackConfig) -> Path:
    directory = config.monitoring.directory
    return Path(directory).expanduser() if directory else local_directory() / "monitoring"


def _write_monitoring(directory: Path, plan: MonitoringPlan) -> None:
    """prometheus.yml, the rules and Grafana's provisioning as files; dashboards of services the
    config no longer has are removed."""
    files = monitoring_files(plan, str(directory))
    for old in (directory / DASHBOARDS).glob("*.json"):
        if f"{DASHBOARDS}/{old.name}" not in files:
            old.unlink()
    for relative, content in files.items():
        _write(directory / relative, content)


def deploy(stack: str, config: StackConfig, secrets: Mapping[str, pulumi.Output[str]]) -> Deployment:
    deployment = build(stack, config, platform(stack, config), secrets)
    path = deployment.local_ca_path
    if deployment.authority is not None and path is not None and not pulumi.runtime.is_dry_run():
        deployment.authority.ca_certificate.apply(lambda pem: _write_local_ca(path, pem))
    plan = deployment.monitoring
    if plan is not None and plan.servers:
        # Files for the Prometheus and Grafana on this machine (what `up` does, not `preview`).
        directory = monitoring_directory(config)
        if not pulumi.runtime.is_dry_run():
            _write_monitoring(directory, plan)
        pulumi.export("monitoring_directory", str(directory))
    return deployment
