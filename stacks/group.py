"""A group stack: some of a platform stack's services, in a state of their own.

`<platform>-services-<k>` reads the platform stack's config file for its services (the same
checks, the same names; the file is the one source of truth) and the platform's
`service_groups` output for the servers and Vault, then makes each service's database, roles
and AppRole exactly as the platform stack would have. See stacks/config/groups.py.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_postgresql as postgresql
import pulumi_vault as vault
import yaml

from pgfleet.components import ServerConnection
from pgfleet.components.service_database import admin_host

from . import outputs
from .compose import Deployment, ServiceTargets, build_service, local_ca_path
from .config import ConfigError, Problem, StackConfig, parse_config
from .config.groups import code_digest, fingerprint, parse_group_stack, services_of_group
from .config.loader import CONFIG_KEYS, decoded


def stack_config_file(root: Path, stack: str) -> Path:
    """Where Pulumi keeps a stack's config: beside Pulumi.yaml, or in its stackConfigDir."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return root / project.get("stackConfigDir", ".") / f"Pulumi.{stack}.yaml"


def _stack_values(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {} if path.is_file() else {}


def is_group_stack(root: Path, stack: str, project: str) -> bool:
    """Named `<platform>-services-<k>`, the platform's config file is here, and the stack has no
    `<project>:` config of its own (a stack that does is an ordinary one, whatever its name)."""
    named = parse_group_stack(stack)
    if named is None or not stack_config_file(root, named[0]).is_file():
        return False
    own = _stack_values(stack_config_file(root, stack))
    return not any(key.startswith(f"{project}:") for key in own)


def read_platform_config(path: Path, project: str) -> StackConfig:
    """The platform stack's checked config, from its file (secret keys are not needed here)."""
    if not path.is_file():
        raise ConfigError([Problem("stack", f"a group stack reads its platform's config from {path}, which does not "
                                            "exist: run it from the platform stack's project directory")])
    values = _stack_values(path)
    raw = {}
    for key in CONFIG_KEYS:
        value = values.get(f"{project}:{key}")
        if value is not None and not (isinstance(value, Mapping) and "secure" in value):
            raw[key] = decoded(value)
    return parse_config(raw)


def _server(name: str, access: pulumi.Output[Any], config: StackConfig) -> ServerConnection:
    """The platform's server `name`, reached as its admin the way the platform reaches it."""

    def value(key: str) -> pulumi.Output[Any]:
        # the access output is secret as a whole; hosts and ports are not, and stay readable in outputs
        return pulumi.Output.unsecret(access.apply(lambda groups: groups["servers"][name].get(key)))

    # known before anything resolves, as the URLs and options need them: from the config, as
    # SharedServer and the platform derive them
    tls = config.tls.enabled
    provider = postgresql.Provider(
        f"{name}-provider",
        host=value("admin").apply(admin_host),
        port=value("admin").apply(lambda admin: int(admin["port"])),
        username=value("admin_username"),
        password=pulumi.Output.secret(value("admin_password")),
        database="postgres",
        sslmode="require" if tls else "disable",
        superuser=True,
        connect_timeout=30,
    )
    settings = {server: placed for server, placed, _ in config.resolved_servers()}[name]
    docker = config.platform == "docker"
    return ServerConnection(
        name=name, provider=provider, host=value("host"), port=value("port"),
        read_host=value("read_host"), read_port=value("read_port"),
        local_host=value("local_host") if docker else None,
        local_port=value("local_port") if docker else None,
        local_read_port=value("local_read_port") if docker else None,
        pooler_host=value("pooler_host") if settings.pooler.enabled else None,
        pooler_port=value("pooler_port") if settings.pooler.enabled else None,
        keeps_data=not docker, tls=tls,
    )


def deploy(platform_stack: str, group: int, root: Path, project: str) -> Deployment:
    config = read_platform_config(stack_config_file(root, platform_stack), project)
    if group >= config.service_groups:
        raise ConfigError([Problem("service_groups", (
            f"stack {platform_stack!r} has service_groups: {config.service_groups}, so no group {group} "
            f"(groups 0..{config.service_groups - 1}); destroy this stack once its services have moved"))])
    reference = pulumi.StackReference(f"pgfleet-platform-{platform_stack}", platform_stack)
    access = pulumi.Output.secret(reference.require_output(outputs.SERVICE_GROUPS))
    vault_provider = vault.Provider(
        "pgfleet-vault",
        address=pulumi.Output.unsecret(access.apply(lambda groups: groups["vault"]["address"])),
        token=pulumi.Output.secret(access.apply(lambda groups: groups["vault"]["token"])),
        skip_child_token=True,
    )
    platform = None
    if config.platform == "kubernetes":  # the AppRoles' secret_ids go where the services' pods read them
        from . import prod

        platform = prod.platform("pgfleet", config.model_copy(update={
            "kubernetes": config.kubernetes.model_copy(update={"create_namespace": False})}))
    tls_on = config.tls.enabled
    local_ca = local_ca_path(config, platform_stack) if tls_on and config.platform == "docker" else None
    targets = ServiceTargets(
        kv_mount=config.vault.kv_mount, approle_path=config.vault.approle_path,
        vault=pulumi.ResourceOptions(provider=vault_provider),
        ca_certificate=pulumi.Output.unsecret(access.apply(lambda groups: groups.get("ca_certificate"))) if tls_on else None,
        local_ca_path=local_ca, secret_id_platform=platform,
    )
    deployment = Deployment()
    servers: dict[str, ServerConnection] = {}
    redis = {s.name for s in config.services if s.redis is not None and config.redis.enabled}
    for service in services_of_group(config, group):
        name = config.server_of(service)
        if name not in servers:
            servers[name] = _server(name, access, config)
        redis_url = (pulumi.Output.secret(access.apply(lambda groups, s=service.name: groups["redis_urls"][s]))
                     if service.name in redis else None)
        build_service(config, service, servers[name], targets, deployment, redis_url)
    outputs.export_services(deployment)
    pulumi.export(outputs.GROUP_FINGERPRINT, fingerprint(config, group, code_digest()))
    return deployment

