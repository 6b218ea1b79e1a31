"""The dev stack: every server, pooler, exporter, Redis and Vault as Docker containers."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pulumi

from pgfleet.components.platform.docker import DockerPlatform, DockerSettings

from .compose import Deployment, build
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


def _write_local_ca(path: str, certificate: str | None) -> str:
    # The CA is public; local_url names this file, so a developer's client verifies the server.
    if not certificate:  # not issued (yet): nothing to write
        return path
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != certificate:
        target.write_text(certificate)
    return path


def deploy(stack: str, config: StackConfig, secrets: Mapping[str, pulumi.Output[str]]) -> Deployment:
    deployment = build(stack, config, platform(stack, config), secrets)
    path = deployment.local_ca_path
    if deployment.authority is not None and path is not None and not pulumi.runtime.is_dry_run():
        deployment.authority.ca_certificate.apply(lambda pem: _write_local_ca(path, pem))
    return deployment
