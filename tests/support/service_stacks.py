"""Service teams' stacks beside a live platform stack: the example team projects, up for real
with a deploy token of each service's provisioner token role."""
from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from pgfleet.stacks import outputs

from .live import Live
from .program import ROOT
from .venv import pgfleet_venv

EXAMPLE = ROOT / "examples" / "service-stacks"


@dataclass
class Team:
    service: str
    stack: auto.Stack
    token: str
    outputs: dict[str, Any]

    def destroy(self) -> None:
        """As a team runs it: with the program (on Kubernetes the provider dials the server
        through the port-forward the program opens; a destroy alone finds no socket)."""
        self.stack.destroy(on_output=print, run_program=True)


def topology(platform: Live) -> dict[str, Any]:
    """The platform's `service_stacks` output."""
    return dict(platform.result.outputs[outputs.SERVICE_STACKS].value)


def deploy_token(platform: Live, service: str, root_token: str) -> str:
    """What a team's deploy job holds: a token of its provisioner's token role (an operator, or
    the CI's own Vault login, makes it; here the Vault's root token plays that part)."""
    root = platform.vault_client(root_token)
    role = topology(platform)[service]["provisioner_token_role"]
    return str(root.auth.token.create(role_name=role)["auth"]["client_token"])


def _stack(platform: Live, work: Path, service: str, token: str) -> auto.Stack:
    env = dict(platform.stack.workspace.env_vars or {})  # the platform's backend and passphrase
    stack = auto.Stack.create(f"{service}-{platform.stack.name}", auto.LocalWorkspace(work_dir=str(work), env_vars=env))
    stack.set_all_config({
        "platformStack": auto.ConfigValue(f"organization/pgfleet/{platform.stack.name}"),
        "vaultToken": auto.ConfigValue(token, secret=True),
    })
    return stack


def _project(source: Path, work: Path, edit: Any) -> Path:
    work = Path(shutil.copytree(source, work))
    project = yaml.safe_load((work / "Pulumi.yaml").read_text())
    edit(project)
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    return work


@contextmanager
def team_stacks(platform: Live, base: Path, root_token: str, python_teams: Sequence[str],
                yaml_team: str | None = None) -> Iterator[dict[str, Team]]:
    """Python teams: stacks of examples/service-stacks/team with pgfleet pip-installed in their
    virtualenv; a YAML team: examples/service-stacks/yaml-team on pgfleet's component package.
    Each up in turn; all destroyed and removed afterwards."""
    python = pgfleet_venv(base / "venv")
    made: dict[str, Team] = {}
    try:
        for service in python_teams:
            work = _project(EXAMPLE / "team", base / service,
                            lambda p: p["runtime"]["options"].update(virtualenv=str(python.parent.parent)))
            token = deploy_token(platform, service, root_token)
            team = made[service] = Team(service, _stack(platform, work, service, token), token, {})
            team.stack.set_config("service", auto.ConfigValue(service))
            team.outputs = {k: v.value for k, v in team.stack.up(on_output=print).outputs.items()}
        if yaml_team is not None:
            work = _project(EXAMPLE / "yaml-team", base / yaml_team,
                            lambda p: p["packages"].update(pgfleet=str(ROOT / "pgfleet" / "provider")))
            token = deploy_token(platform, yaml_team, root_token)
            team = made[yaml_team] = Team(yaml_team, _stack(platform, work, yaml_team, token), token, {})
            values = {k: v.value for k, v in team.stack.up(on_output=print).outputs.items()}
            team.outputs = {"database": values["database"], "url": values["url"],
                                       "migration_url": values["migrationUrl"], "vault_role_id": values["vaultRoleId"],
                                       "vault_secret_id": values["vaultSecretId"]}
        yield made
    finally:
        for team in made.values():
            team.destroy()
            team.stack.workspace.remove_stack(team.stack.name, force=True)
