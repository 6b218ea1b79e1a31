"""SharedServer: one PostgreSQL server that hosts many isolated databases."""
from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_postgresql as postgresql

from ._passwords import generated_password
from .backup_bucket import BackupBucket
from .certificate_authority import CertificateAuthority
from .platform import DataVolume, FileSetRef, HealthCheck, Platform, PortSpec, ProcessSpec, RunningProcess, dns_name

POSTGRES_PORT = 5432
EXPORTER_PORT = 9187
#: Where the exporter reads its custom queries.
EXPORTER_QUERIES = "/etc/pgfleet/exporter/queries.yaml"
PGDATA = "/var/lib/postgresql/data/pgdata"
#: Where the server's processes (and its jobs) mount its TLS files.
TLS_DIR = "/etc/pgfleet/tls"
TLS_CA = f"{TLS_DIR}/ca.crt"
#: libpq's settings for a connection that verifies the server against the stack's CA.
VERIFY_FULL = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": TLS_CA}


@dataclass
class ServerTlsArgs:
    """TLS on every connection from the network, with a certificate from the stack's CA."""

    authority: CertificateAuthority
    cert_ttl_s: int = 30 * 24 * 3600
    renew_before_s: int = 7 * 24 * 3600
    """`pulumi up` issues a new certificate once fewer seconds than this are left; the
    server re-reads it without a restart."""
    required: bool = True
    """Network connections must use TLS (`hostssl`); loopback inside the server's own
    container or pod stays open (health checks, `kubectl exec`, a port-forward)."""
    rotation: str = ""
    """A new value renews the certificate at the next `pulumi up`."""


@dataclass
class PoolerArgs:
    """PgBouncer in front of the primary."""

    image: str
    host_port: int | None = None
    pool_mode: str = "transaction"
    default_pool_size: int = 20
    max_client_conn: int = 200


@dataclass
class SharedServerArgs:
    platform: Platform
    image: str
    """A PostgreSQL image that honours POSTGRES_USER / POSTGRES_PASSWORD / PGDATA like the official one."""
    host_port: int | None = None
    """Published on the dev bind address; the Pulumi program connects through it on Docker."""
    storage: str = "10Gi"
    replicas: int = 0
    read_host_port: int | None = None
    max_connections: int = 100
    extensions: Sequence[str] = ("pg_stat_statements",)
    """Preloaded libraries (shared_preload_libraries)."""
    settings: Mapping[str, str] = field(default_factory=dict)
    admin_username: str = "postgres"
    admin_password: pulumi.Input[str] | None = None
    """A generated 32-character password, kept secret in state, when None."""
    clients: Sequence[Mapping[str, str]] = ()
    """Pod selectors of the services whose databases live here (Kubernetes NetworkPolicy)."""
    databases: Sequence[str] = ()
    """The databases it will hold, for the per-database dumps."""
    pooler: PoolerArgs | None = None
    exporter_image: str | None = None
    """Runs the Prometheus postgres exporter (port 9187) as a least-privilege pg_monitor role when set."""
    exporter_host_port: int | None = None
    exporter_queries: str | None = None
    """The exporter's custom queries (its queries.yaml; pgfleet.observability writes pgfleet's),
    run as the same pg_monitor role. With pg_stat_statements preloaded, its view is created in
    the `postgres` database the exporter reads."""
    exporter_args: Sequence[str] = ()
    """More exporter flags, e.g. --no-collector.bgwriter where a collector does not know the server."""
    backup: BackupBucket | None = None
    backup_image: str | None = None
    """Runs the scheduled backups; the server's own image (which carries pgBackRest) when None."""
    cpu: str | None = None
    memory: str | None = None
    protect: bool | None = None
    """Protect the data volume from deletion; the platform's default (on in prod) when None."""
    host_name: str | None = None
    """The host name the server goes by (container, Service): the component's name as a DNS
    label when None. Its replicas, pooler and exporter take it with -read, -pooler, -metrics."""
    tls: ServerTlsArgs | None = None
    """Serve TLS (primary, replicas, PgBouncer on both sides); plain TCP when None."""


@dataclass(frozen=True)
class ServerConnection:
    """What a database needs from its server: created by `SharedServer` or `from_existing`."""

    name: str
    provider: postgresql.Provider
    host: pulumi.Output[str]
    port: pulumi.Input[int]
    read_host: pulumi.Output[str]
    read_port: pulumi.Input[int]
    local_host: pulumi.Output[str] | None = None
    local_port: pulumi.Input[int] | None = None
    local_read_port: pulumi.Input[int] | None = None
    pooler_host: pulumi.Output[str] | None = None
    pooler_port: pulumi.Input[int] | None = None
    keeps_data: bool = False
    """The server's data outlives the stack: databases and roles made on it are kept (Pulumi
    forgets them) when the stack no longer declares them, instead of dropped with their rows."""
    tls: bool = False
    """The server serves TLS with a certificate from the stack's CA: URLs verify it."""


def _settings_args(settings: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    return args


def _pg_isready(user: str) -> HealthCheck:
    # TCP, not the socket: the image's init-time server listens on the socket only, and a
    # check that passes then would let the provider connect before the real server is up.
    return HealthCheck(command=["pg_isready", "-h", "127.0.0.1", "-p", str(POSTGRES_PORT), "-U", user, "-d", "postgres"])


def _pg_hba(tls_required: bool) -> str:
    """Client authentication, as a file the server re-reads on reload: TLS-only from the network
    when required; loopback (the container's own health checks and tools) stays open."""
    network = "hostssl" if tls_required else "host"
    return "\n".join([
        "# pgfleet: written by the stack (tls.require); the server re-reads it when it changes",
        "local all all trust",
        "local replication all trust",
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all ::1/128 scram-sha-256",
        "host replication all 127.0.0.1/32 scram-sha-256",
        f"{network} all all all scram-sha-256",
        f"{network} replication all all scram-sha-256",
        "",
    ])


def _tls_settings() -> dict[str, str]:
    return {
        "ssl": "on",
        "ssl_cert_file": f"{TLS_DIR}/tls.crt",
        "ssl_key_file": f"{TLS_DIR}/tls.key",
        "ssl_min_protocol_version": "TLSv1.2",
        "hba_file": f"{TLS_DIR}/pg_hba.conf",
    }


def _reload_watch(tls: FileSetRef | None) -> dict[str, str]:
    """The image's watcher re-reads rotated certificates (SIGHUP) when this names their folder."""
    return {"PGFLEET_RELOAD_WATCH": TLS_DIR} if tls else {}


#: Where the postgres image keeps the shell functions that turn `<NAME>_FILE` secrets into the
#: files programs read.
SECRETS_LIBRARY = "/usr/local/lib/pgfleet/secrets.sh"


def _replica_script(primary: str, settings: Sequence[str], tls: bool) -> str:
    # A replica clones the primary once (pg_basebackup -R writes standby.signal and the
    # connection), then runs as a hot standby.
    return "\n".join([
        "set -eu",
        # The image's secrets library, as its own entrypoint uses it: a password delivered as
        # a file (Docker) lands as root and becomes the server's alone; then it is written in
        # libpq's password-file format (PGPASSFILE), which pg_basebackup and the WAL receiver read.
        f". {SECRETS_LIBRARY}",
        # Started as root: a fresh volume may belong to root (a host-path volume ignores
        # fsGroup), so PGDATA is made the server's first, and then root is dropped.
        'if [ "$(id -u)" = 0 ]; then',
        '  mkdir -p "$PGDATA" && chown postgres:postgres "$(dirname "$PGDATA")" "$PGDATA" && chmod 700 "$PGDATA"',
        # a clone made by an image whose postgres user had another uid
        '  find "$PGDATA" \\! -user postgres -exec chown postgres:postgres {} +',
        "  secrets_own postgres",
        # its own HOME: libpq looks there for client certificates (and finds root's unreadable)
        '  HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups bash -c "$BASH_EXECUTION_STRING"',
        "fi",
        "secrets_render",
        'if [ ! -s "$PGDATA/PG_VERSION" ]; then',
        f"  until pg_isready -h {primary} -p {POSTGRES_PORT}; do sleep 1; done",
        f'  {"PGSSLMODE=verify-full PGSSLROOTCERT=" + TLS_CA + " " if tls else ""}pg_basebackup -h {primary} -p {POSTGRES_PORT} -U "$REPLICATION_USER" -D "$PGDATA" -X stream --checkpoint=fast',
        '  touch "$PGDATA/standby.signal"',
        '  chmod 700 "$PGDATA"',
        "fi",
        # Rotated certificates are re-read without a restart, as on the primary.
        *(['pgfleet-reload-on-change "$PGFLEET_RELOAD_WATCH" $$ &'] if tls else []),
        # The connection is given at every start, its password from PGPASSFILE (or PGPASSWORD,
        # which the WAL receiver's libpq reads as well): a rotated password needs no re-clone.
        # With TLS the standby verifies the primary against the stack's CA.
        f'exec postgres -D "$PGDATA" -c hot_standby=on'
        f' -c "primary_conninfo=host={primary} port={POSTGRES_PORT} user=$REPLICATION_USER'
        f'{f" sslmode=verify-full sslrootcert={TLS_CA}" if tls else ""}" {shlex.join(settings)}',
    ])


class SharedServer(pulumi.ComponentResource):
    """A PostgreSQL primary with its data volume, health check, optional read replicas,
    PgBouncer pooler, metrics exporter and scheduled backups.

    `connection` is what `IsolatedDatabase` needs; its provider connects only after the
    primary reports healthy. Outputs: `host`/`port` (write), `read_host`, `pooler_host`,
    `admin_password` (secret).
    """

    connection: ServerConnection
    host: pulumi.Output[str]
    read_host: pulumi.Output[str]
    admin_username: str
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: SharedServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:postgres:SharedServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        platform = args.platform
        # resources keyed by the component's name, the server's objects by its host name
        self._key, host = dns_name(name), args.host_name or dns_name(name)
        self._host = host
        protect = platform.protect if args.protect is None else args.protect

        self.admin_username = args.admin_username
        if args.admin_password is None:
            self.admin_password = generated_password(f"{name}-admin-password", self)
        else:
            self.admin_password = pulumi.Output.secret(args.admin_password)

        settings = {
            "listen_addresses": "*",
            "max_connections": str(args.max_connections),
            "password_encryption": "scram-sha-256",
            "wal_level": "replica",
            "max_wal_senders": str(max(10, args.replicas * 2 + 2)),
            "wal_keep_size": "512MB",
        }
        if args.extensions:
            settings["shared_preload_libraries"] = ",".join(args.extensions)
        wiring = args.backup.wiring(host, PGDATA) if args.backup else None
        if wiring:
            settings |= wiring.settings
        self.certificate_serial: pulumi.Output[str] | None = None
        self._tls = self._tls_files(name, args) if args.tls else None
        if self._tls:
            settings |= _tls_settings()
        settings |= dict(args.settings)
        postgres_args = _settings_args(settings)

        primary = platform.run(
            ProcessSpec(
                name=self._key,
                host=host,
                role="postgres",
                server=host,
                image=args.image,
                ports=[PortSpec("postgres", POSTGRES_PORT, args.host_port)],
                args=postgres_args,
                env={"POSTGRES_USER": args.admin_username, "PGDATA": PGDATA, **(wiring.env if wiring else {}),
                     **_reload_watch(self._tls)},
                secret_env={"POSTGRES_PASSWORD": self.admin_password, **(wiring.secret_env if wiring else {})},
                data=DataVolume("/var/lib/postgresql/data", args.storage, retain=protect),
                mounts=wiring.mounts if wiring else (),
                file_sets=self._tls_mounts,
                health=_pg_isready(args.admin_username),
                clients=args.clients,
                cpu=args.cpu,
                memory=args.memory,
            ),
            # WAL is archived from the first segment on: the bucket's store runs first.
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=args.backup.ready))
            if args.backup else child,
        )
        if primary.admin_host is None:
            raise ValueError(
                f"server {name!r}: the Pulumi program cannot reach it; on Docker give it a host port "
                "(e.g. port: 5432), on Kubernetes set kubernetes.admin_host when running outside the cluster"
            )
        self.host = primary.host
        self.provider = postgresql.Provider(
            f"{name}-provider",
            host=primary.admin_host,
            port=primary.admin_ports["postgres"],
            username=args.admin_username,
            password=self.admin_password,
            database="postgres",
            # Encrypted whenever the server serves TLS. Not verified: the program's own link ends on
            # this machine (a port bound to 127.0.0.1, or a port-forward through the API server).
            sslmode="require" if self._tls else "disable",
            superuser=True,
            connect_timeout=30,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(primary.resources)),
        )
        admin = pulumi.ResourceOptions(parent=self, provider=self.provider, retain_on_delete=platform.keeps_data)

        self.read_host = primary.host
        read_port_local = args.host_port
        if args.replicas > 0:
            replica = self._replicas(name, args, admin, child, settings, protect)
            self.read_host = replica.host
            read_port_local = args.read_host_port
        self.pooler_host: pulumi.Output[str] | None = None
        if args.pooler:
            self.pooler_host = self._pooler(name, args, primary, child).host
        if args.exporter_image:
            self._exporter(name, args, primary, admin, child)
        if args.backup:
            for job in args.backup.jobs(
                self._key, host, args.backup_image or args.image, primary, PGDATA,
                args.admin_username, self.admin_password, args.databases,
            ):
                if self._tls:  # the jobs reach the server over the network: they verify it
                    job = dataclasses.replace(job, env={**job.env, **VERIFY_FULL}, file_sets=self._tls_mounts)
                platform.schedule(job, pulumi.ResourceOptions(parent=self, depends_on=list(primary.resources)))

        self.connection = ServerConnection(
            name=name,
            provider=self.provider,
            host=self.host,
            port=POSTGRES_PORT,
            read_host=self.read_host,
            read_port=POSTGRES_PORT,
            local_host=primary.admin_host if platform.kind == "docker" else None,
            local_port=args.host_port,
            local_read_port=read_port_local,
            pooler_host=self.pooler_host,
            pooler_port=6432 if args.pooler else None,
            keeps_data=platform.keeps_data,
            tls=self._tls is not None,
        )
        self.register_outputs({
            "host": self.host,
            "read_host": self.read_host,
            "pooler_host": self.pooler_host,
            "admin_username": self.admin_username,
            "admin_password": self.admin_password,
            "certificate_serial": self.certificate_serial,
        })

    @property
    def _tls_mounts(self) -> list[tuple[FileSetRef, str]]:
        """The TLS files as every process and job of the server mounts them."""
        return [(self._tls, TLS_DIR)] if self._tls else []

    def _tls_files(self, name: str, args: SharedServerArgs) -> FileSetRef:
        """The server's certificate (every name its primary, replicas and pooler go by) with the
        CA and pg_hba.conf, as files its processes mount: a renewed certificate reaches them in
        place and they reload it."""
        tls = args.tls
        assert tls is not None
        platform = args.platform
        names = platform.host_names(self._host, 1)
        if args.replicas > 0:
            names += platform.host_names(f"{self._host}-read", args.replicas)
        if args.pooler:
            names += platform.host_names(f"{self._host}-pooler", 1)
        certificate = tls.authority.issue(
            f"{name}-certificate", [*names, "localhost"], ["127.0.0.1", "::1"], tls.cert_ttl_s, tls.renew_before_s,
            tls.rotation, pulumi.ResourceOptions(parent=self),
        )
        self.certificate_serial = certificate.serial_number
        return platform.file_set(
            f"{self._key}-tls",
            {
                "ca.crt": tls.authority.ca_certificate,
                "tls.crt": certificate.certificate,
                "tls.key": certificate.private_key,
                "pg_hba.conf": _pg_hba(tls.required),
            },
            private=["tls.key"],
            image=args.image,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _login_role(self, name: str, role: str, opts: pulumi.ResourceOptions,
                    **extra: object) -> tuple[postgresql.Role, pulumi.Output[str]]:
        """A LOGIN role for one of the server's own helpers, with a generated password."""
        password = generated_password(f"{name}-{role}-password", self)
        created = postgresql.Role(f"{name}-{role}", name=f"pgfleet_{role}", login=True, password=password, opts=opts, **extra)
        return created, password

    def _replicas(self, name: str, args: SharedServerArgs, admin: pulumi.ResourceOptions,
                  child: pulumi.ResourceOptions, settings: Mapping[str, str], protect: bool) -> RunningProcess:
        role, password = self._login_role(name, "replicator", admin, replication=True)
        replica_settings = {k: v for k, v in settings.items() if not k.startswith("archive_")}
        script = _replica_script(self._host, _settings_args(replica_settings), self._tls is not None)
        return args.platform.run(
            ProcessSpec(
                name=f"{self._key}-read",
                host=f"{self._host}-read",
                role="replica",
                server=self._host,
                image=args.image,
                ports=[PortSpec("postgres", POSTGRES_PORT, args.read_host_port)],
                command=["bash", "-c"],
                args=[script],
                env={"PGDATA": PGDATA, "REPLICATION_USER": role.name, **_reload_watch(self._tls)},
                secret_env={"PGPASSWORD": password},
                data=DataVolume("/var/lib/postgresql/data", args.storage, retain=protect),
                file_sets=self._tls_mounts,
                health=_pg_isready(args.admin_username),
                clients=args.clients,
                instances=args.replicas,
                cpu=args.cpu,
                memory=args.memory,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[role])),
        )

    def _pooler(self, name: str, args: SharedServerArgs, primary: RunningProcess,
                child: pulumi.ResourceOptions) -> RunningProcess:
        pooler = args.pooler
        assert pooler is not None
        # Clients authenticate with their own roles: PgBouncer looks their SCRAM secrets up
        # through the admin (auth_user) instead of keeping a copy of every password.
        ini = pulumi.Output.concat(
            "[databases]\n* = host=", primary.host, f" port={POSTGRES_PORT}\n",
            "[pgbouncer]\nlisten_addr = *\nlisten_port = 6432\n",
            "auth_type = scram-sha-256\nauth_file = /etc/pgbouncer/userlist.txt\n",
            f"auth_user = {args.admin_username}\n",
            f"pool_mode = {pooler.pool_mode}\ndefault_pool_size = {pooler.default_pool_size}\n",
            f"max_client_conn = {pooler.max_client_conn}\nignore_startup_parameters = extra_float_digits,options\n",
            self._pooler_tls(args.tls),
        )
        userlist = pulumi.Output.concat('"', args.admin_username, '" "', self.admin_password, '"\n')
        return args.platform.run(
            ProcessSpec(
                name=f"{self._key}-pooler",
                host=f"{self._host}-pooler",
                role="pooler",
                server=self._host,
                image=pooler.image,
                ports=[PortSpec("pgbouncer", 6432, pooler.host_port)],
                files={"/etc/pgbouncer/pgbouncer.ini": ini, "/etc/pgbouncer/userlist.txt": userlist},
                env=_reload_watch(self._tls),
                file_sets=self._tls_mounts,
                # A database and user that exist: by default pg_isready asks for "root", which
                # PgBouncer would pass on to the server, and the server log that it does not exist.
                health=HealthCheck(command=["pg_isready", "-h", "127.0.0.1", "-p", "6432", "-U", args.admin_username,
                                            "-d", "postgres"]),
                clients=args.clients,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=list(primary.resources))),
        )

    def _pooler_tls(self, tls: ServerTlsArgs | None) -> str:
        """PgBouncer's TLS: clients get the server's certificate (TLS-only when the server
        requires it), and PgBouncer verifies the primary as any client does."""
        if tls is None:
            return ""
        required = tls.required
        return "".join([
            f"client_tls_sslmode = {'require' if required else 'prefer'}\n",
            f"client_tls_cert_file = {TLS_DIR}/tls.crt\nclient_tls_key_file = {TLS_DIR}/tls.key\n",
            f"server_tls_sslmode = verify-full\nserver_tls_ca_file = {TLS_CA}\n",
        ])

    def _exporter(self, name: str, args: SharedServerArgs, primary: RunningProcess,
                  admin: pulumi.ResourceOptions, child: pulumi.ResourceOptions) -> RunningProcess:
        role, password = self._login_role(name, "monitor", admin, roles=["pg_monitor"])
        ready: list[pulumi.Resource] = [role]
        files: dict[str, pulumi.Input[str]] = {}
        env: dict[str, pulumi.Input[str]] = {}
        if args.exporter_queries is not None:
            files[EXPORTER_QUERIES] = args.exporter_queries
            env["PG_EXPORTER_EXTEND_QUERY_PATH"] = EXPORTER_QUERIES
            if "pg_stat_statements" in args.extensions:
                ready.append(postgresql.Extension(
                    f"{name}-pg-stat-statements", name="pg_stat_statements", database="postgres", opts=admin))
        # The exporter's own split form: only the password is secret, and the exporter reads it
        # from a file (DATA_SOURCE_PASS_FILE on Docker) or the env (a secretKeyRef on Kubernetes).
        tls = f"sslmode=verify-full&sslrootcert={TLS_CA}" if self._tls else "sslmode=disable"
        uri = pulumi.Output.concat(primary.host, f":{POSTGRES_PORT}/postgres?{tls}")
        return args.platform.run(
            ProcessSpec(
                name=f"{self._key}-metrics",
                host=f"{self._host}-metrics",
                role="exporter",
                server=self._host,
                image=args.exporter_image or "",
                ports=[PortSpec("metrics", EXPORTER_PORT, args.exporter_host_port, restricted=False)],
                args=["--web.listen-address", f":{EXPORTER_PORT}", *args.exporter_args],
                env={"DATA_SOURCE_URI": uri, "DATA_SOURCE_USER": role.name, **env},
                secret_env={"DATA_SOURCE_PASS": password},
                files=files,
                file_sets=self._tls_mounts,
                scrape_port=EXPORTER_PORT,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=ready)),
        )

    @staticmethod
    def from_existing(
        name: str,
        host: pulumi.Input[str],
        admin_username: pulumi.Input[str],
        admin_password: pulumi.Input[str],
        port: int = POSTGRES_PORT,
        read_host: pulumi.Input[str] | None = None,
        sslmode: str = "require",
        opts: pulumi.ResourceOptions | None = None,
    ) -> ServerConnection:
        """A server this stack does not run (a managed service, another stack's server)."""
        provider = postgresql.Provider(
            f"{name}-provider",
            host=host,
            port=port,
            username=admin_username,
            password=pulumi.Output.secret(admin_password),
            sslmode=sslmode,
            superuser=False,
            opts=opts,
        )
        write = pulumi.Output.from_input(host)
        return ServerConnection(
            name=name,
            provider=provider,
            host=write,
            port=port,
            read_host=pulumi.Output.from_input(read_host) if read_host is not None else write,
            read_port=port,
        )
