"""ServiceDatabase: a service team's own stack declares its database and AppRole on a pgfleet
platform stack's server.

The team's stack reads plain topology from the platform stack (`PlatformTopology`, a
`StackReference`): hosts, ports, Vault paths. The one secret it needs, its provisioner's
database login, it reads from Vault with the team's own token, whose policy reaches that
service alone (`ServiceProvisioner`). It never holds a superuser password.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_postgresql as postgresql
import pulumi_vault as vault

from .isolated_database import DEFAULT_CA_PATH, IsolatedDatabase, IsolatedDatabaseArgs
from .platform import kube_forward
from .service_provisioner import TOPOLOGY_OUTPUT
from .shared_server import ServerConnection
from .vault_app_role import VaultAppRole, VaultAppRoleArgs


class PlatformTopology:
    """The `service_stacks` output of a pgfleet platform stack, read by `StackReference`."""

    def __init__(self, stack_name: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        name = stack_name if isinstance(stack_name, str) else "platform"
        self.reference = pulumi.StackReference(f"pgfleet-platform-{name.replace('/', '-')}", stack_name, opts=opts)
        self.stack_name = pulumi.Output.from_input(stack_name)

    def service(self, service: str) -> pulumi.Output[dict[str, Any]]:
        """The entry the platform made for `service`; fails naming the services it has if none."""

        def entry(values: list[Any]) -> dict[str, Any]:
            stacks, stack_name = values
            if not isinstance(stacks, Mapping) or service not in stacks:
                known = ", ".join(sorted(stacks)) if isinstance(stacks, Mapping) else "none"
                raise ValueError(f"platform stack {stack_name!r} provisions no service {service!r} "
                                 f"(it provisions: {known}); add it to that stack's service_stacks")
            return dict(stacks[service])

        return pulumi.Output.all(self.reference.get_output(TOPOLOGY_OUTPUT), self.stack_name).apply(entry)


@dataclass
class ServiceDatabaseArgs:
    platform: PlatformTopology | str
    """The platform stack ('org/project/stack', or the stack name on the local backend)."""
    service: str
    """The service, as the platform stack's `service_stacks` names it."""
    vault_token: pulumi.Input[str] | None = None
    """A token of the service's provisioner token role; None: the deploy's VAULT_TOKEN."""
    database: str | None = None
    schema: str | None = None
    app_username: str | None = None
    connection_limit: int = 20
    statement_timeout_ms: int = 30_000
    idle_in_transaction_timeout_ms: int = 60_000
    migrator_connection_limit: int = 5
    protect: bool = False
    ca_path: str = DEFAULT_CA_PATH
    """Where the service finds the platform's CA certificate (the URLs name it)."""
    pooled: bool = False
    """Also give a URL through the server's PgBouncer (the platform must run one)."""
    extra_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """More values for the service's Vault path, beside its database credentials."""
    token_ttl_s: int = 900
    token_max_ttl_s: int = 3600
    secret_id_ttl_s: int = 86_400
    secret_id_num_uses: int = 10


def admin_host(admin: Mapping[str, Any]) -> str:
    """Where this deploy dials the server: a published port on Docker, a port-forward through the
    API server on Kubernetes (as the platform stack's own program does)."""
    if admin.get("kind") == "kubernetes":
        return kube_forward.ensure(admin["namespace"], admin["pod"], int(admin["port"]))
    return str(admin["host"])


class ServiceDatabase(pulumi.ComponentResource):
    """One service's database, roles and AppRole, declared from the service team's own stack.

    Outputs: `database_name`, `server`, `url`, `urls` and `read_urls` by driver (secret),
    `migration_url` (secret), `secret_path`, `role_id` and `secret_id` (secret) of its AppRole.
    """

    database_name: pulumi.Output[str]
    server: pulumi.Output[str]
    url: pulumi.Output[str]
    migration_url: pulumi.Output[str]
    secret_path: pulumi.Output[str]
    role_id: pulumi.Output[str]
    secret_id: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:service:ServiceDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        platform = args.platform if isinstance(args.platform, PlatformTopology) else PlatformTopology(
            args.platform, opts=child)
        topology = platform.service(args.service)

        def value(key: str) -> pulumi.Output[Any]:
            # an output drops its None values: a missing key is one the platform does not have
            return topology.apply(lambda entry: entry.get(key))

        vault_provider = vault.Provider(
            f"{name}-vault", address=value("vault_address"),
            token=pulumi.Output.secret(args.vault_token) if args.vault_token is not None else None,
            # the token is the team's, scoped to this service: no child token to make
            skip_child_token=True, opts=child,
        )
        login = vault.kv.get_secret_v2_output(
            mount=value("kv_mount"), name=value("provisioner_secret"),
            opts=pulumi.InvokeOptions(parent=self, provider=vault_provider),
        )
        credentials = pulumi.Output.secret(login.data)
        tls = value("tls")
        provider = postgresql.Provider(
            f"{name}-postgres",
            host=value("admin").apply(admin_host),
            port=value("admin").apply(lambda admin: int(admin["port"])),
            username=credentials.apply(lambda data: data["username"]),
            password=credentials.apply(lambda data: data["password"]),
            database="postgres",
            # The link ends on this machine (a published port, a port-forward), as the platform's
            # does. A platform without TLS would get URLs that ask for it: refused instead.
            sslmode=tls.apply(_required_tls(args.service)),
            superuser=False,
            connect_timeout=30,
            opts=child,
        )
        server = ServerConnection(
            name=args.service,
            provider=provider,
            host=value("host"),
            port=value("port"),
            read_host=value("read_host"),
            read_port=value("read_port"),
            pooler_host=value("pooler_host").apply(_required("pooler_host", args.service)) if args.pooled else None,
            pooler_port=value("pooler_port") if args.pooled else None,
            tls=True,
        )
        database = IsolatedDatabase(
            name,
            IsolatedDatabaseArgs(
                server=server,
                service=args.service,
                database=args.database,
                schema=args.schema,
                app_username=args.app_username,
                connection_limit=args.connection_limit,
                statement_timeout_ms=args.statement_timeout_ms,
                idle_in_transaction_timeout_ms=args.idle_in_transaction_timeout_ms,
                migrator_connection_limit=args.migrator_connection_limit,
                protect=args.protect,
                ca_path=args.ca_path,
            ),
            opts=child,
        )
        secrets: dict[str, pulumi.Input[str]] = {**database.credentials(), **args.extra_secrets}
        secrets["DATABASE_CA_CERT"] = value("ca_certificate")
        approle = VaultAppRole(
            name,
            VaultAppRoleArgs(
                service=args.service,
                kv_mount=value("kv_mount"),
                approle_backend=value("approle_path"),
                secrets=secrets,
                token_ttl_s=args.token_ttl_s,
                token_max_ttl_s=args.token_max_ttl_s,
                secret_id_ttl_s=args.secret_id_ttl_s,
                secret_id_num_uses=args.secret_id_num_uses,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=vault_provider),
        )
        self.database = database
        self.database_name = database.database_name
        self.server = value("server")
        self.url = database.url
        self.urls = database.urls
        self.read_urls = database.read_urls
        self.migration_url = database.migration_url
        self.pooled_url = database.pooled_url
        self.secret_path = approle.secret_path
        self.role_id = approle.role_id
        self.secret_id = approle.secret_id
        self.register_outputs({
            "database_name": self.database_name,
            "server": self.server,
            "url": self.url,
            "migration_url": self.migration_url,
            "secret_path": self.secret_path,
            "role_id": self.role_id,
            "secret_id": self.secret_id,
        })


def _required(key: str, service: str) -> Any:
    def check(found: Any) -> Any:
        if found is None:
            raise ValueError(f"service {service!r}: the platform's server has no {key} (pooled=True needs its "
                             "pooler enabled)")
        return found
    return check


def _required_tls(service: str) -> Any:
    def sslmode(on: Any) -> str:
        if not on:
            raise ValueError(f"service {service!r}: the platform stack's servers do not serve TLS; pgfleet service "
                             "stacks need tls.enabled on the platform stack")
        return "require"
    return sslmode
