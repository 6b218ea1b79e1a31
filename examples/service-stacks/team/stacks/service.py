"""Reads this stack's config and declares the service's database (`components.team_database`)."""
from __future__ import annotations

import pulumi

from components import team_database


def build() -> None:
    config = pulumi.Config()
    database = team_database(
        service=config.require("service"),
        platform_stack=config.require("platformStack"),
        connection_limit=config.get_int("connectionLimit") or 20,
        # None: the provider reads VAULT_TOKEN from the deploy's environment
        vault_token=config.get_secret("vaultToken"),
    )
    pulumi.export("database", database.database_name)
    pulumi.export("server", database.server)
    pulumi.export("vault_secret_path", database.secret_path)
    pulumi.export("vault_role_id", database.role_id)
    pulumi.export("vault_secret_id", database.secret_id)
    pulumi.export("url", database.url)
    pulumi.export("migration_url", database.migration_url)
    pulumi.export("pooled_url", database.pooled_url)
