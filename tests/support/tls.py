"""TLS as a client meets it: the certificate a server presents, and connections that must (or
must not) be admitted."""
from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable

import psycopg

#: PostgreSQL's SSLRequest: a length of 8 and the code 1234.5679.
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def served_certificate(host: str, port: int, ca_file: str, server_name: str) -> dict:
    """The certificate a PostgreSQL server (or PgBouncer) at host:port presents, verified against
    `ca_file` for `server_name`, as `ssl.SSLSocket.getpeercert()` gives it."""
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST)
        answer = raw.recv(1)
        assert answer == b"S", f"{host}:{port} declined TLS (answered {answer!r})"
        context = ssl.create_default_context(cafile=ca_file)
        with context.wrap_socket(raw, server_hostname=server_name) as wrapped:
            return wrapped.getpeercert()


def served_serial(host: str, port: int, ca_file: str, server_name: str) -> int:
    return int(served_certificate(host, port, ca_file, server_name)["serialNumber"], 16)


def vault_serial(serial: str) -> int:
    """Vault's form of a serial number ('3a:0f:...') as an integer."""
    return int(serial.replace(":", ""), 16)


def backend_uses_tls(connection: psycopg.Connection) -> bool:
    """What the server says of the session it serves this connection with."""
    row = connection.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    return bool(row and row[0])


def refusal(connect: Callable[[], object]) -> str:
    """The error text of a connection attempt that must fail."""
    try:
        connect()
    except Exception as error:  # noqa: BLE001 - drivers raise their own kinds
        return str(error)
    raise AssertionError("the connection was admitted")

