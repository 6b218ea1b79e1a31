"""RedisCache: one Redis shared by services, each an ACL user confined to its own keys."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from ._passwords import generated_password
from .platform import DataVolume, HealthCheck, Platform, PortSpec, ProcessSpec, dns_name

REDIS_PORT = 6379


@dataclass
class RedisCacheArgs:
    platform: Platform
    image: str
    services: Sequence[tuple[str, int]]
    """(service, database index) pairs; each service gets user '<service>' on keys '<service>:*'."""
    host_port: int | None = None
    clients: Sequence[Mapping[str, str]] = ()
    """Pod selectors admitted on Kubernetes."""
    maxmemory: str = "256mb"
    maxmemory_policy: str = "allkeys-lru"
    appendonly: bool = True
    storage: str = "1Gi"
    protect: bool | None = None


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def acl_rule(user: str, password_hash: pulumi.Input[str], key_prefix: str | None) -> list[pulumi.Input[str]]:
    """A Redis ACL rule, one token per argument (redis-server would read a token with spaces
    as one quoted name). A database index is no isolation; a key pattern is."""
    keys = [f"~{key_prefix}:*", f"&{key_prefix}:*", "+@all", "-@admin", "-@dangerous"] if key_prefix else ["~*", "&*", "+@all"]
    digest = pulumi.Output.from_input(password_hash).apply(lambda h: f"#{h}")
    return [user, "on", digest, "resetchannels", *keys]


class RedisCache(pulumi.ComponentResource):
    """Redis with persistence, the default user disabled and one ACL user per service.

    Outputs: `host`, `port`, `urls` (secret, by service: redis://user:password@host:6379/db).
    """

    host: pulumi.Output[str]
    urls: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RedisCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:redis:RedisCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        passwords = {service: generated_password(f"{name}-{service}-password", self) for service, _ in args.services}
        admin_password = generated_password(f"{name}-admin-password", self)
        # Only SHA-256 digests reach the command line (and so the container's config).
        rules = [acl_rule("admin", admin_password.apply(_sha256), None)]
        rules += [acl_rule(s, passwords[s].apply(_sha256), s) for s, _ in args.services]
        command_args: list[pulumi.Input[str]] = [
            "redis-server", "--port", str(REDIS_PORT), "--dir", "/data",
            "--maxmemory", args.maxmemory, "--maxmemory-policy", args.maxmemory_policy,
            "--appendonly", "yes" if args.appendonly else "no",
            "--user", "default", "off",
        ]
        for rule in rules:
            command_args += ["--user", *rule]
        protect = args.platform.protect if args.protect is None else args.protect
        process = args.platform.run(
            ProcessSpec(
                name=dns_name(name),
                role="redis",
                server=dns_name(name),
                image=args.image,
                ports=[PortSpec("redis", REDIS_PORT, args.host_port)],
                args=command_args,
                data=DataVolume("/data", args.storage, retain=protect),
                # The default user is off, so an unauthenticated PING answers NOAUTH: still alive.
                health=HealthCheck(command=["sh", "-c", "redis-cli -p 6379 ping | grep -qE 'PONG|NOAUTH'"]),
                clients=args.clients,
            ),
            child,
        )
        self.host = process.host
        self.port = REDIS_PORT
        self.admin_password = admin_password
        self.urls = {
            service: pulumi.Output.secret(
                pulumi.Output.concat("redis://", service, ":", passwords[service], "@", process.host, f":{REDIS_PORT}/{db}")
            )
            for service, db in args.services
        }
        self.register_outputs({"host": self.host, "port": self.port, "urls": self.urls})
