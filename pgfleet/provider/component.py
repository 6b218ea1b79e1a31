"""The components other languages get, with plain inputs (names, limits, a stack name, a token)
and no Python objects; each wraps the library's component of the same name."""
# No `from __future__ import annotations`: the component host reads these annotations as types.

import sys
from collections.abc import Sequence
from typing import Optional, TypedDict

import pulumi
from pulumi.provider.experimental import component_provider_host

from pgfleet.components.service_database import ServiceDatabase as LibraryServiceDatabase
from pgfleet.components.service_database import ServiceDatabaseArgs as LibraryServiceDatabaseArgs

from . import PLUGIN_DIR

#: The package name: what a program's `packages:` key and its type tokens start with.
PACKAGE = "pgfleet"


class ServiceDatabaseArgs(TypedDict):
    platform_stack: pulumi.Input[str]
    """The pgfleet platform stack ('organization/pgfleet/<stack>' on a file backend)."""
    service: str
    """The service, as the platform stack's service_stacks names it."""
    vault_token: Optional[pulumi.Input[str]]
    """A token of the service's provisioner token role; unset: VAULT_TOKEN of the deploy."""
    connection_limit: Optional[int]
    """The app role's connection limit (20)."""
    statement_timeout_ms: Optional[int]
    """The app role's statement_timeout in milliseconds (30000)."""
    database: Optional[str]
    """The database's name ('<service>_db')."""
    pooled: Optional[bool]
    """Also give a URL through the server's PgBouncer."""


class ServiceDatabase(pulumi.ComponentResource):
    """One service's isolated database, least-privilege roles and Vault AppRole on a pgfleet
    platform stack's server, made through that service's own provisioner."""

    database_name: pulumi.Output[str]
    """The database."""
    url: pulumi.Output[str]
    """The app role's URL (secret)."""
    migration_url: pulumi.Output[str]
    """The migrator's URL (secret)."""
    secret_path: pulumi.Output[str]
    """The service's credentials in Vault (KV v2 API path)."""
    role_id: pulumi.Output[str]
    """Its AppRole's role_id."""
    secret_id: pulumi.Output[str]
    """Its AppRole's secret_id (secret)."""

    def __init__(self, name: str, args: ServiceDatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(f"{PACKAGE}:index:ServiceDatabase", name, {}, opts)
        limit = args.get("connection_limit")
        timeout = args.get("statement_timeout_ms")
        database = LibraryServiceDatabase(
            name,
            LibraryServiceDatabaseArgs(
                platform=args["platform_stack"],
                service=args["service"],
                vault_token=args.get("vault_token"),
                database=args.get("database"),
                # numbers cross the wire as floats
                connection_limit=int(limit) if limit is not None else 20,
                statement_timeout_ms=int(timeout) if timeout is not None else 30_000,
                pooled=bool(args.get("pooled")),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.database_name = database.database_name
        self.url = database.url
        self.migration_url = database.migration_url
        self.secret_path = database.secret_path
        self.role_id = database.role_id
        self.secret_id = database.secret_id
        self.register_outputs({
            "database_name": self.database_name,
            "url": self.url,
            "migration_url": self.migration_url,
            "secret_path": self.secret_path,
            "role_id": self.role_id,
            "secret_id": self.secret_id,
        })


def serve(argv: Sequence[str]) -> None:
    """`--path`: print the plugin folder; otherwise serve the package to the engine."""
    if list(argv[:1]) == ["--path"]:
        print(PLUGIN_DIR)
        return
    component_provider_host(name=PACKAGE, components=[ServiceDatabase])


if __name__ == "__main__":
    serve(sys.argv[1:])
