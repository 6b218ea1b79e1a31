"""The team's conventions on top of pgfleet's `ServiceDatabase`."""
from __future__ import annotations

import pulumi

from pgfleet import ServiceDatabase, ServiceDatabaseArgs


def team_database(service: str, platform_stack: str, connection_limit: int,
                  vault_token: pulumi.Input[str] | None) -> ServiceDatabase:
    """The service's database with the team's settings: a short statement timeout, pooled URLs."""
    return ServiceDatabase(
        service,
        ServiceDatabaseArgs(
            platform=platform_stack,
            service=service,
            vault_token=vault_token,
            connection_limit=connection_limit,
            statement_timeout_ms=10_000,
            pooled=True,
        ),
    )
