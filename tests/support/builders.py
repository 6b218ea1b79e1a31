"""Small builders for testing one component alone."""
from __future__ import annotations

import pulumi
import pulumi_postgresql as postgresql

from pgfleet.components import ServerConnection


def server_connection(name: str = "main", pooler: bool = False, local_port: int | None = None) -> ServerConnection:
    """A connection to a server the test does not create, with a real (mocked) provider."""
    provider = postgresql.Provider(f"{name}-provider", host="127.0.0.1", port=5432, username="postgres",
                                   password=pulumi.Output.secret("admin-password"))
    return ServerConnection(
        name=name,
        provider=provider,
        host=pulumi.Output.from_input(f"{name}-primary"),
        port=5432,
        read_host=pulumi.Output.from_input(f"{name}-read"),
        read_port=5432,
        local_host=pulumi.Output.from_input("127.0.0.1") if local_port else None,
        local_port=local_port,
        pooler_host=pulumi.Output.from_input(f"{name}-pooler") if pooler else None,
        pooler_port=6432 if pooler else None,
    )
