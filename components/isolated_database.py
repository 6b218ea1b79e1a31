"""IsolatedDatabase: one service's database, its least-privilege roles and its URLs."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from ._passwords import generated_password
from .shared_server import ServerConnection

#: URL schemes the seeds' drivers use: libpq/node-postgres/Prisma, SQLAlchemy+asyncpg, SQLAlchemy+psycopg3.
DRIVER_SCHEMES: tuple[str, ...] = ("postgresql", "postgresql+asyncpg", "postgresql+psycopg")

#: Where a service finds the stack's CA certificate by default (URLs name it for libpq).
DEFAULT_CA_PATH = "/etc/pgfleet/ca.crt"

_APP_TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE"]
_APP_SEQUENCE_PRIVILEGES = ["USAGE", "SELECT", "UPDATE"]


@dataclass
class IsolatedDatabaseArgs:
    server: ServerConnection
    service: str
    """The owning service; role names derive from it."""
    database: str | None = None
    """'<service>_db' when None."""
    schema: str | None = None
    """The service's schema, owned by its owner role; the service name when None."""
    app_username: str | None = None
    """The runtime role; '<service>_user' when None."""
    connection_limit: int = 20
    statement_timeout_ms: int = 30_000
    idle_in_transaction_timeout_ms: int = 60_000
    migrator_connection_limit: int = 5
    protect: bool = False
    """Protect the database from deletion (dropping it loses its data even where volumes are kept)."""
    ca_path: str = DEFAULT_CA_PATH
    """Where the service finds the stack's CA certificate: the URLs verify the server against it
    when the server serves TLS."""
    local_ca_path: str | None = None
    """The same for `local_url` (a file on the developer's machine)."""


def tls_query(scheme: str, ca_path: str) -> str:
    """What a URL of `scheme` needs to ask for TLS and verify the server (its certificate chains
    to the CA at `ca_path`, and it names the URL's host).

    libpq and everything built on it (psycopg, SQLAlchemy's `+psycopg`, node-postgres, pgx) read
    `sslmode=verify-full&sslrootcert=<file>`. SQLAlchemy's `+asyncpg` hands the query to
    `asyncpg.connect()` as arguments, which takes `ssl` but no root-certificate argument:
    asyncpg reads the CA from `PGSSLROOTCERT` (each service's Vault path holds it)."""
    if scheme == "postgresql+asyncpg":
        return "ssl=verify-full"
    return f"sslmode=verify-full&sslrootcert={ca_path}"


def _url(scheme: str, user: pulumi.Input[str], password: pulumi.Input[str], host: pulumi.Input[str],
         port: pulumi.Input[int], database: pulumi.Input[str], ca_path: str | None = None) -> pulumi.Output[str]:
    query = f"?{tls_query(scheme, ca_path)}" if ca_path else ""
    # a port read from another stack arrives as an Output, and as a float (JSON has one number type)
    port_text = pulumi.Output.from_input(port).apply(lambda number: str(int(number)))
    return pulumi.Output.secret(
        pulumi.Output.concat(scheme, "://", user, ":", password, "@", host, ":", port_text, "/", database, query)
    )


class IsolatedDatabase(pulumi.ComponentResource):
    """A database only its own service can reach.

    Roles: `<service>_owner` (NOLOGIN, owns the database and schema), `<service>_migrator`
    (LOGIN, member of the owner: runs DDL), the app role (LOGIN, DML only, connection limit
    and statement timeout) and `<service>_readonly` (SELECT, for the read host). PUBLIC loses
    CONNECT; default privileges FOR ROLE owner and migrator give the app and read-only roles
    access to every table the migrations create.

    Outputs (all URLs secret): `url`/`read_url` (postgresql://), `urls`/`read_urls` by driver
    scheme, `migration_url`, `readonly_url`, `pooled_url`, `local_url`.
    """

    database_name: pulumi.Output[str]
    app_username: pulumi.Output[str]
    app_password: pulumi.Output[str]
    url: pulumi.Output[str]
    read_url: pulumi.Output[str]

    def __init__(self, name: str, args: IsolatedDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:postgres:IsolatedDatabase", name, None, opts)
        service = args.service
        server = args.server
        schema_name = args.schema or service
        # Where the server's data outlives the stack, so does this database: dropped by nobody
        # but an operator, it comes back when a new stack declares it on the kept volume.
        pg = pulumi.ResourceOptions(parent=self, provider=server.provider, retain_on_delete=server.keeps_data)

        def login_role(role: str, role_name: str, **extra: object) -> tuple[postgresql.Role, pulumi.Output[str]]:
            secret = generated_password(f"{name}-{role}-password", self)
            created = postgresql.Role(
                f"{name}-{role}", name=role_name, login=True, password=secret, search_paths=[schema_name],
                opts=pg, **extra,
            )
            return created, secret

        owner = postgresql.Role(f"{name}-owner", name=f"{service}_owner", login=False, opts=pg)
        migrator, migrator_password = login_role(
            "migrator", f"{service}_migrator", roles=[owner.name], connection_limit=args.migrator_connection_limit
        )
        app, app_password = login_role(
            "app", args.app_username or f"{service}_user",
            connection_limit=args.connection_limit,
            statement_timeout=args.statement_timeout_ms,
            idle_in_transaction_session_timeout=args.idle_in_transaction_timeout_ms,
        )
        readonly, readonly_password = login_role(
            "readonly", f"{service}_readonly",
            connection_limit=args.connection_limit,
            statement_timeout=args.statement_timeout_ms,
            idle_in_transaction_session_timeout=args.idle_in_transaction_timeout_ms,
        )
        database = postgresql.Database(
            f"{name}-database", name=args.database or f"{service}_db", owner=owner.name,
            # After every role on create, so before them on delete: DROP DATABASE takes the
            # objects the migrator owns with it, and only then can its role be dropped.
            opts=pulumi.ResourceOptions.merge(
                pg, pulumi.ResourceOptions(protect=args.protect, depends_on=[migrator, app, readonly])
            ),
        )
        # What lives inside the database goes when it goes: deleting a schema that holds tables
        # one by one would fail (RESTRICT, rightly) and is pointless before DROP DATABASE.
        on_db = pulumi.ResourceOptions.merge(pg, pulumi.ResourceOptions(depends_on=[database], deleted_with=database))

        schema = postgresql.Schema(
            f"{name}-schema", name=schema_name, database=database.name, owner=owner.name,
            drop_cascade=False, opts=on_db,
        )
        # Privilege changes run one at a time: concurrent GRANTs that touch one ACL (the
        # database's, the schema's, a default-ACL row) fail with "tuple concurrently updated".
        access: list[pulumi.CustomResource] = []

        def in_turn(resource: type, resource_name: str, **props: object) -> None:
            after = pulumi.ResourceOptions(depends_on=[access[-1] if access else schema])
            access.append(resource(resource_name, opts=pulumi.ResourceOptions.merge(on_db, after), **props))

        # CONNECT on a new database is granted to PUBLIC even on PG15+: revoke it, then
        # grant it back to this service's own login roles only.
        in_turn(postgresql.Grant, f"{name}-revoke-public", database=database.name, role="public",
                object_type="database", privileges=[])
        for role_key, role in (("migrator", migrator), ("app", app), ("readonly", readonly)):
            in_turn(postgresql.Grant, f"{name}-connect-{role_key}", database=database.name, role=role.name,
                    object_type="database", privileges=["CONNECT"])
        for role_key, role in (("app", app), ("readonly", readonly)):
            in_turn(postgresql.Grant, f"{name}-usage-{role_key}", database=database.name, schema=schema.name,
                    role=role.name, object_type="schema", privileges=["USAGE"])
        grants = {
            "app": (app, _APP_TABLE_PRIVILEGES, _APP_SEQUENCE_PRIVILEGES),
            "readonly": (readonly, ["SELECT"], ["SELECT"]),
        }
        for role_key, (role, table_privileges, sequence_privileges) in grants.items():
            for object_type, privileges in (("table", table_privileges), ("sequence", sequence_privileges)):
                # The database is new, so default privileges cover every object it will hold.
                # Without FOR ROLE they would only cover objects the admin creates; migrations
                # create them as the migrator (or after SET ROLE to the owner).
                for creator_key, creator in (("owner", owner), ("migrator", migrator)):
                    in_turn(postgresql.DefaultPrivileges, f"{name}-{role_key}-{object_type}s-by-{creator_key}",
                            database=database.name, schema=schema.name, owner=creator.name, role=role.name,
                            object_type=object_type, privileges=privileges)

        self.database_name = database.name
        self.schema_name = schema.name
        self.owner_role = owner.name
        self.migrator_username = migrator.name
        self.migrator_password = migrator_password
        self.app_username = app.name
        self.app_password = app_password
        self.readonly_username = readonly.name
        self.readonly_password = readonly_password
        # URLs resolve only after the grants exist: a URL that is handed out must work.
        db = pulumi.Output.all(database.name, *(r.id for r in access)).apply(lambda values: values[0])
        ca = args.ca_path if server.tls else None
        self.ca_path = ca
        self.urls = {s: _url(s, app.name, app_password, server.host, server.port, db, ca) for s in DRIVER_SCHEMES}
        self.read_urls = {
            s: _url(s, readonly.name, readonly_password, server.read_host, server.read_port, db, ca)
            for s in DRIVER_SCHEMES
        }
        self.url = self.urls["postgresql"]
        self.read_url = self.read_urls["postgresql"]
        self.migration_url = _url("postgresql", migrator.name, migrator_password, server.host, server.port, db, ca)
        self.pooled_url = (
            _url("postgresql", app.name, app_password, server.pooler_host, server.pooler_port, db, ca)
            if server.pooler_host is not None and server.pooler_port is not None
            else None
        )
        self.local_url = (
            _url("postgresql", app.name, app_password, server.local_host, server.local_port, db,
                 args.local_ca_path if server.tls else None)
            if server.local_host is not None and server.local_port is not None
            else None
        )
        self.register_outputs({
            "database_name": self.database_name,
            "app_username": self.app_username,
            "app_password": self.app_password,
            "url": self.url,
            "read_url": self.read_url,
            "urls": self.urls,
            "read_urls": self.read_urls,
            "migration_url": self.migration_url,
            "pooled_url": self.pooled_url,
            "local_url": self.local_url,
        })

    def credentials(self) -> dict[str, pulumi.Output[str]]:
        """The values a service reads from its Vault path (seed 000's key names, prefix-free)."""
        values: dict[str, pulumi.Output[str]] = {
            "DB_NAME": self.database_name,
            "DB_USER": self.app_username,
            "DB_PASSWORD": self.app_password,
            "DB_MIGRATOR_USER": self.migrator_username,
            "DB_MIGRATOR_PASSWORD": self.migrator_password,
            "DB_READONLY_USER": self.readonly_username,
            "DB_READONLY_PASSWORD": self.readonly_password,
            "DATABASE_URL": self.url,
            "DATABASE_READ_URL": self.read_url,
            "MIGRATION_URL": self.migration_url,
        }
        if self.pooled_url is not None:
            values["DATABASE_POOLED_URL"] = self.pooled_url
        if self.ca_path is not None:
            # asyncpg (and any libpq client given a URL without it) finds the CA here
            values["PGSSLROOTCERT"] = pulumi.Output.from_input(self.ca_path)
        return values
