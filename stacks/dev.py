"""The dev stack: every server, pooler, exporter, Redis and Vault as Docker containers."""
from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.platform.docker import DockerPlatform, DockerSettings

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


def deploy(stack: str, config: StackConfig, secrets: Mapping[str, pulumi.Output[str]]) -> Deployment:
    return build(stack, config, platform(stack, config), secrets)
