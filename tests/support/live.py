"""A stack brought up for real, and the checks every live stack must pass."""
from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import hvac
import psycopg
import pytest
from pulumi import automation as auto

from pgfleet.components.platform.docker import SECRETS_DIR
from pgfleet.stacks import outputs

from .engine import throwaway_stack, up_with_policies
from .program import ROOT


#: Host ports a test stack may publish on: above it lie Kubernetes' NodePort range and the
#: kernel's ephemeral range (32768-60999), where any listener on port 0 (Pulumi's plugins among
#: them) or the test cluster may already hold a port, and the publish fails at random.
PORT_CEILING = 30000
#: Ports the test cluster listens on (setup/cluster.sh): API server, etcd, kubelet and its
#: neighbours, CoreDNS health.
CLUSTER_PORTS = frozenset({6443, 12379, 12380, 18080, 18181, *range(10248, 10260)})
#: Each port an isolated() config publishes, by the prefix of the stack that took it: two test
#: stacks that share one would refuse each other when both are up.
_PORTS_TAKEN: dict[int, str] = {}


def isolated(config: dict[str, Any], prefix: str, port_offset: int) -> dict[str, Any]:
    """The config on ports, container names and a network of its own, so it runs beside a
    developer's stacks on one engine (backups included: their volume takes the prefix too).
    Refuses an offset whose ports a machine may already use or another test stack has taken."""
    config = copy.deepcopy(config)
    published: list[int] = []

    def moved(port: int) -> int:
        published.append(port + port_offset)
        return port + port_offset

    def shift(settings: dict[str, Any]) -> None:
        for key in ("port", "read_port"):
            if settings.get(key):
                settings[key] = moved(settings[key])
        for nested in ("pooler", "metrics"):
            if settings.get(nested, {}).get("port"):
                settings[nested]["port"] = moved(settings[nested]["port"])

    for server in config.get("servers", []):
        shift(server)
    for service in config.get("services", []):
        if service.get("topology") == "dedicated":
            shift(service.setdefault("dedicated", {}))
    config.setdefault("vault", {})
    config["vault"]["port"] = moved(config["vault"].get("port", 8200))
    if config.get("redis", {}).get("enabled"):
        config["redis"]["port"] = moved(config["redis"].get("port", 6379))
    config["docker"] = {**config.get("docker", {}), "network": f"{prefix}net", "prefix": prefix}
    _take_ports(published, prefix, port_offset)
    return config


def _take_ports(ports: list[int], prefix: str, port_offset: int) -> None:
    for port in ports:
        holder = _PORTS_TAKEN.get(port, prefix)
        if port >= PORT_CEILING or port in CLUSTER_PORTS or holder != prefix:
            reason = (f"taken by the test stack {holder!r}" if holder != prefix else
                      "used by the test cluster" if port in CLUSTER_PORTS else f"not below {PORT_CEILING}")
            raise ValueError(f"port_offset {port_offset} of {prefix!r} puts a port on {port}, {reason}; "
                             f"choose an offset whose ports are free")
    _PORTS_TAKEN.update(dict.fromkeys(ports, prefix))


def sweep_leftovers(prefix: str) -> list[str]:
    """Remove the containers, networks and volumes under a test stack's prefix that a killed run
    left behind: their fixed names and ports would refuse this run's stack. No test prefix
    starts another, so stacks of other tests (or of other sessions) are never touched."""
    removed: list[str] = []
    for kind, listing in (("container", ["ps", "-a", "--format", "{{.Names}}"]),
                          ("network", ["network", "ls", "--format", "{{.Name}}"]),
                          ("volume", ["volume", "ls", "--format", "{{.Name}}"])):
        names = subprocess.run(["docker", *listing], capture_output=True, text=True, check=True).stdout.split()
        stale = [name for name in names if name.startswith(prefix)]
        if stale:
            subprocess.run(["docker", kind, "rm", *(["-f", "-v"] if kind == "container" else []), *stale],
                           capture_output=True, text=True, check=True)
            removed += stale
    return removed


@contextmanager
def docker_stack(tmp: Path, name: str, config: dict[str, Any], prefix: str) -> Iterator[Live]:
    """A throwaway stack of an isolated() config, up for real on Docker, clear of what a killed
    run under the same prefix left behind."""
    for leftover in sweep_leftovers(prefix):
        print(f"removed leftover {leftover}")
    with throwaway_stack(tmp, name, config) as stack:
        yield Live(stack, up_with_policies(stack), prefix)


class Live:
    """A live stack's outputs, with URLs rewritten to the 127.0.0.1 ports the host reaches."""

    def __init__(self, stack: auto.Stack, result: auto.UpResult, prefix: str) -> None:
        self.stack = stack
        self.result = result
        self.prefix = prefix
        values = {k: v.value for k, v in result.outputs.items()}
        self.services: dict[str, Any] = values[outputs.SERVICES]
        self.urls: dict[str, Any] = values[outputs.CONNECTION_URLS]
        self.secret_ids: dict[str, str] = values[outputs.VAULT_SECRET_IDS]
        self.vault: dict[str, Any] = values[outputs.VAULT]
        self.root_token: str | None = values.get(outputs.VAULT_ROOT_TOKEN)  # a managed Vault's only
        self.servers: dict[str, Any] = values[outputs.SERVERS]
        self.admin_passwords: dict[str, str] = values[outputs.SERVER_ADMIN_PASSWORDS]
        self.tls: dict[str, Any] | None = values.get(outputs.TLS)

    def local_query(self, query: str) -> str:
        """A URL's query as this process uses it: the CA where this machine has it (a Docker
        stack writes it to tls.local_ca_path; the services' path is theirs)."""
        local = (self.tls or {}).get("local_ca_path")
        if not local:
            return query
        pairs = [(k, local if k == "sslrootcert" else v) for k, v in parse_qsl(query)]
        return urlencode(pairs, safe="/")

    def dial(self, server: str, read: bool = False) -> tuple[str, str]:
        """How this process reaches a server's primary (or read host): a URL's host:port, and
        query parameters. Here: its port published on 127.0.0.1."""
        info = self.servers[server]
        return f"127.0.0.1:{info['local_read_port'] if read else info['local_port']}", ""

    def server_url(self, server: str, user: str, password: str, database: str, read: bool = False,
                   query: str = "") -> str:
        """A libpq URL (the form psycopg takes) for these credentials on that server."""
        host, extra = self.dial(server, read)
        return urlunsplit(("postgresql", f"{user}:{password}@{host}", f"/{database}",
                           "&".join(q for q in (query, extra) if q), ""))

    def url(self, service: str, kind: str = "url") -> str:
        """A service URL, with the host replaced by the way this process reaches its server."""
        parts = urlsplit(self.urls[service][kind])
        name = self.services[service]["server"]
        server = self.servers[name]
        read = kind.startswith("read") and parts.hostname == server["read_host"] != server["host"]
        return self.server_url(name, parts.username or "", parts.password or "", parts.path.lstrip("/"), read,
                               self.local_query(parts.query))

    def admin(self, service: str, database: str = "postgres") -> str:
        return self.admin_url(self.services[service]["server"], database)

    def admin_url(self, server: str, database: str = "postgres") -> str:
        """The server's superuser, as an operator connects."""
        return self.server_url(server, self.servers[server]["admin_username"], self.admin_passwords[server], database)

    def exported_state(self) -> str:
        return exported_state(self.stack)

    def restore(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`pgfleet-restore ARGS` on this stack, as an operator runs it: in the project's
        directory, logged in to its backend; the command finds the platform from the stack."""
        workspace = self.stack.workspace
        command = [sys.executable, "-m", "pgfleet.operations.restore", "--stack", self.stack.name,
                   "--cwd", workspace.work_dir, *args]
        return subprocess.run(command, cwd=ROOT, env={**os.environ, **(workspace.env_vars or {})},
                              capture_output=True, text=True, timeout=1800, check=False)

    def vault_client(self, token: str | None = None) -> hvac.Client:
        address = self.vault["address"]
        return hvac.Client(url=address, token=token)

    def containers(self) -> list[str]:
        out = subprocess.run(["docker", "ps", "-a", "--filter", f"name=^{self.prefix}", "--format", "{{.Names}}"],
                             capture_output=True, text=True, check=True).stdout
        return sorted(line for line in out.splitlines() if line.strip())

    def volumes(self) -> list[str]:
        out = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name=^{self.prefix}"],
                             capture_output=True, text=True, check=True).stdout
        return sorted(out.split())


def exported_state(stack: auto.Stack) -> str:
    """`pulumi stack export` as an operator runs it: secrets stay encrypted (the Automation API's
    `export_stack` shows them)."""
    workspace = stack.workspace
    return subprocess.run(["pulumi", "stack", "export", "--stack", stack.name], cwd=workspace.work_dir,
                          env={**os.environ, **(workspace.env_vars or {})}, capture_output=True, text=True,
                          check=True).stdout


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def check_apps_use_what_their_migrators_create(live: Live) -> None:
    for service in live.services:
        with connect(live.url(service, "migration_url")) as migrator:
            migrator.execute("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, label text NOT NULL)")
        with connect(live.url(service)) as app:
            app.execute("INSERT INTO items (label) VALUES (%s)", (f"{service}-row",))
            assert (f"{service}-row",) in app.execute("SELECT label FROM items").fetchall()
            app.execute("UPDATE items SET label = label WHERE true")
            app.execute("DELETE FROM items WHERE label = 'none'")


def check_no_service_reaches_another(live: Live) -> int:
    """Every service's own credentials against every other service's database: all refused."""
    attempts = 0
    for service in live.services:
        for other, info in live.services.items():
            if other == service:
                continue
            own = urlsplit(live.urls[service]["url"])
            target = live.server_url(info["server"], own.username or "", own.password or "", info["database"])
            with pytest.raises(psycopg.OperationalError,
                               match="permission denied for database|password authentication failed"):
                connect(target).close()
            attempts += 1
    n = len(live.services)
    assert attempts == n * (n - 1)
    return attempts


def check_app_roles_are_least_privileged(live: Live) -> None:
    for service in live.services:
        with connect(live.url(service)) as app:
            for statement in ("CREATE ROLE intruder", "CREATE DATABASE intruder", "CREATE TABLE intruder (id int)",
                              "DROP TABLE items"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)


def check_public_has_no_connect(live: Live) -> None:
    for service, info in live.services.items():
        with connect(live.admin(service)) as admin:
            (allowed,) = admin.execute(
                "SELECT has_database_privilege('public', %s, 'CONNECT')", (info["database"],)
            ).fetchone()
            assert allowed is False, service


def check_approles_read_only_their_own_path(live: Live) -> None:
    mount = live.vault["kv_mount"]
    for service, info in live.services.items():
        client = live.vault_client()
        client.auth.approle.login(role_id=info["vault_role_id"], secret_id=live.secret_ids[service])
        own = client.secrets.kv.v2.read_secret_version(path=service, mount_point=mount, raise_on_deleted_version=True)
        assert own["data"]["data"]["DB_NAME"] == info["database"]
        for other in live.services:
            if other != service:
                with pytest.raises(hvac.exceptions.Forbidden):
                    client.secrets.kv.v2.read_secret_version(path=other, mount_point=mount,
                                                             raise_on_deleted_version=True)


def check_ports_on_loopback_only(live: Live, expected_ports: set[int]) -> None:
    published = set()
    for name in live.containers():
        ports = subprocess.run(["docker", "port", name], capture_output=True, text=True, check=True).stdout
        for line in ports.splitlines():
            assert "-> 127.0.0.1:" in line, f"{name}: {line}"
            published.add(int(line.rsplit(":", 1)[1]))
    assert published == expected_ports


def check_second_preview_is_empty(live: Live, refresh: bool = False) -> None:
    """A preview (with `refresh`: against what the platform holds now) shows no change."""
    preview = live.stack.preview(refresh=refresh, on_output=print)
    changes = {op: n for op, n in preview.change_summary.items() if op != auto.OpType.SAME and n}
    assert not changes, changes


def redis(port: int, *command: str, auth: tuple[str, str] | None = None) -> str:
    """One Redis command on 127.0.0.1:port (RESP over a socket), after AUTH user password when
    given: the first line of the reply, e.g. '+OK' or '-NOPERM ...'."""
    def encode(*args: str) -> bytes:
        return f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, sock.makefile("rb") as replies:
        if auth:
            sock.sendall(encode("AUTH", *auth))
            assert replies.readline().startswith(b"+OK"), "AUTH refused"
        sock.sendall(encode(*command))
        return replies.readline().decode().strip()


def check_redis_users_reach_only_their_own_keys(live: Live, port: int) -> int:
    """Each service's Redis user writes and reads its own prefix and is refused every other's;
    without a user nothing is served. Returns the number of refusals checked."""
    users = {service: urlsplit(entry["redis_url"]) for service, entry in live.urls.items() if "redis_url" in entry}
    assert len(users) >= 2 and redis(port, "PING").startswith("-NOAUTH")
    refusals = 0
    for service, url in users.items():
        auth = (url.username or "", url.password or "")
        assert redis(port, "SET", f"{service}:k", "v", auth=auth) == "+OK"
        assert redis(port, "GET", f"{service}:k", auth=auth) == "$1"
        for other in users:
            if other != service:
                for command in (("SET", f"{other}:k", "x"), ("GET", f"{other}:k")):
                    assert redis(port, *command, auth=auth).startswith("-NOPERM"), (service, other, command)
                    refusals += 1
    return refusals


#: How `pulumi stack export --show-secrets` marks a secret value (its plaintext JSON-encoded).
_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")
_ACL_DIGEST = re.compile(r"#[0-9a-f]{64}")


def state_secrets(live: Live) -> set[str]:
    """Every secret string the stack holds, decrypted from its state (Automation's export runs
    `pulumi stack export --show-secrets`): passwords, tokens, keys, passphrases, secret_ids.
    Only values secret by themselves: a property with a secret inside (a container's uploads)
    is secret as a whole in the state, file paths and all. Not the Redis ACL rules' password
    digests (`#<sha256>`): derived from secrets, so secret in the state, they are on Redis's
    command line by design (a digest does not log in; the passwords themselves are checked)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
                plaintext = value.get("plaintext")
                secret = json.loads(plaintext) if isinstance(plaintext, str) else value.get("value")
                if isinstance(secret, str) and len(secret) >= 8 and not _ACL_DIGEST.fullmatch(secret):
                    found.add(secret)
            else:
                for item in value.values():
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(live.stack.export_stack().deployment)
    return found


def output_secrets(live: Live) -> set[str]:
    """The generated secrets a stack's outputs name: admin passwords, the Vault root token, the
    passwords in the connection URLs, the secret_ids."""
    values = set(live.admin_passwords.values()) | set(live.secret_ids.values())
    if live.root_token:
        values.add(live.root_token)
    for kinds in live.urls.values():
        for url in kinds.values():
            if isinstance(url, str) and urlsplit(url).password:
                values.add(urlsplit(url).password)
    return values


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, check=check)


def check_no_secret_in_container_config(live: Live) -> int:
    """`docker inspect` of every container of the stack (Config: Env, Cmd, Entrypoint, Labels,
    health check; Path, Args, HostConfig), the command lines of the processes running in it and
    its log hold none of the stack's secrets. And the check can fail: every secret file a container
    got (under SECRETS_DIR) holds one of those secrets, its service user (not root) reads it,
    another user (nobody) cannot, and every server's admin password and the Vault root token
    arrived that way. Returns the number of containers checked."""
    expected = output_secrets(live)
    secrets = state_secrets(live) | expected
    assert len(secrets) >= len(expected) > 0
    delivered: set[str] = set()
    containers = live.containers()
    for name in containers:
        (info,) = json.loads(_docker("inspect", "--type", "container", name).stdout)
        shown = json.dumps({"Config": info["Config"], "Path": info["Path"], "Args": info["Args"],
                            "HostConfig": info["HostConfig"]})
        processes = _docker("top", name, "-o", "pid,args", check=False).stdout
        logged = _docker("logs", name, check=False)
        for where, text in (("docker inspect", shown), ("process arguments", processes),
                            ("docker logs", logged.stdout + logged.stderr)):
            leaked = [f"{value[:3]}..." for value in secrets if value in text]
            assert not leaked, f"{name}: {where} holds {len(leaked)} secret(s): {leaked}"
        listing = _docker("exec", name, "find", SECRETS_DIR, "-type", "f", "-printf", "%p %u %m\\n", check=False)
        for line in listing.stdout.splitlines():
            path, owner, mode = line.split()
            assert owner != "root" and mode == "400", f"{name}: {path} is {owner} {mode}, not its service user's 0400"
            value = _docker("exec", "-u", owner, name, "cat", path).stdout
            assert value in secrets, f"{name}: {path} holds no secret of this stack"
            delivered.add(value)
            refused = _docker("exec", "-u", "nobody", name, "cat", path, check=False)
            assert refused.returncode != 0 and "Permission denied" in refused.stderr, f"{name}: nobody reads {path}"
    must_arrive = set(live.admin_passwords.values()) | ({live.root_token} if live.root_token else set())
    assert must_arrive <= delivered, "a server password or the Vault token did not arrive as a file"
    return len(containers)
