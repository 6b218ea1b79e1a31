"""Library use: `pip install` the repository, then separate Pulumi programs import it: one from
an empty folder, and the example service team's project, which has `components` and `stacks`
packages of its own (the layout that could not import pgfleet while it installed packages by
those names at the top level)."""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

import pgfleet
from tests.support.program import ROOT
from tests.support.venv import pgfleet_venv

TEAM_PROJECT = ROOT / "examples" / "service-stacks" / "team"

PROGRAM = textwrap.dedent('''
    import pulumi
    from pulumi.runtime import Mocks, set_mocks

    class EchoMocks(Mocks):
        def new_resource(self, args):
            outputs = dict(args.inputs)
            if args.typ.startswith("random:"):
                outputs["result"] = "generated"
            if args.typ.endswith(":AuthBackendRole"):
                outputs["roleId"] = "role-id"
            return args.name + "-id", outputs

        def call(self, args):
            return {}

    set_mocks(EchoMocks(), project="orders-platform", stack="dev")

    import pgfleet
    from pgfleet import IsolatedDatabase, IsolatedDatabaseArgs, SharedServer, SharedServerArgs
    from pgfleet import DockerPlatform, DockerSettings, VaultAppRole, VaultAppRoleArgs

    assert "site-packages" in pgfleet.__file__, pgfleet.__file__

    @pulumi.runtime.test
    def program():
        platform = DockerPlatform("orders", DockerSettings(network="orders"))
        server = SharedServer("orders-pg", SharedServerArgs(platform=platform, image="postgres:15", host_port=15432))
        database = IsolatedDatabase("orders", IsolatedDatabaseArgs(server=server.connection, service="orders"))
        role = VaultAppRole("orders", VaultAppRoleArgs(service="orders", kv_mount="kv", approle_backend="approle",
                                                       secrets=database.credentials()))
        return pulumi.Output.all(database.url, role.role_id).apply(lambda v: print("URL", v[0], "ROLE", v[1]))

    program()
''')

#: Runs the team project's own `__main__.py` under mocks that play the platform stack and Vault.
TEAM_UNDER_MOCKS = textwrap.dedent('''
    import json
    import os
    import runpy
    import sys

    import pulumi
    from pulumi.runtime import Mocks, set_all_config, set_mocks

    TOPOLOGY = json.loads(sys.argv[1])
    seen = {}

    class PlatformMocks(Mocks):
        def new_resource(self, args):
            outputs = dict(args.inputs)
            if args.typ == "pulumi:pulumi:StackReference":
                outputs["outputs"] = {"service_stacks": TOPOLOGY}
            if args.typ.startswith("random:"):
                outputs["result"] = "generated"
            if args.typ.endswith(":AuthBackendRole"):
                outputs["roleId"] = "role-id"
            if args.typ.endswith(":AuthBackendRoleSecretId"):
                outputs["secretId"] = "secret-id"
            if args.typ == "pulumi:providers:postgresql":
                user = args.inputs.get("username")  # secret: it came from Vault
                seen["provisioner"] = (user.get("value") if isinstance(user, dict) else user, args.inputs.get("host"))
            return args.name + "-id", outputs

        def call(self, args):
            if args.token == "vault:kv/getSecretV2:getSecretV2":
                seen["vault_read"] = (args.args.get("mount"), args.args.get("name"))
                return {"data": {"username": "orders_provisioner", "password": "provisioner-password"}}
            return {}

    set_mocks(PlatformMocks(), project="service-team", stack="orders")
    set_all_config({"service-team:service": "orders", "service-team:platformStack": "organization/pgfleet/platform"})
    exported = {}
    pulumi.export = lambda name, value: exported.__setitem__(name, value)
    sys.path.insert(0, ".")  # as the language host runs a project: its own folder first

    import components
    import pgfleet
    import stacks

    assert components.__file__ == os.path.abspath("components/__init__.py"), components.__file__
    assert "site-packages" in pgfleet.__file__, pgfleet.__file__
    print("TEAM", components.__name__, stacks.__name__, "PGFLEET", pgfleet.__file__)

    @pulumi.runtime.test
    def program():
        runpy.run_path("__main__.py", run_name="__main__")
        names = sorted(exported)
        return pulumi.Output.all(*(exported[n] for n in names)).apply(
            lambda values: print("EXPORTS", json.dumps(dict(zip(names, values))), "SEEN", json.dumps(seen)))

    program()
''')

TOPOLOGY = {"orders": {
    "server": "shared", "host": "fleet-shared", "port": 5432, "read_host": "fleet-shared", "read_port": 5432,
    "pooler_host": "fleet-shared-pooler", "pooler_port": 6432, "tls": True,
    "admin": {"kind": "docker", "host": "127.0.0.1", "port": 5442}, "ca_certificate": "-----BEGIN CERTIFICATE-----",
    "vault_address": "http://127.0.0.1:8210", "kv_mount": "services", "approle_path": "approle",
    "provisioner": "orders_provisioner", "provisioner_secret": "_provisioners/orders",
    "provisioner_policy": "pgfleet-provisioner-orders", "provisioner_token_role": "pgfleet-provisioner-orders",
}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pgfleet_venv(tmp_path_factory.mktemp("venv"))


def test_pip_install_gives_importable_components(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    # Run from a folder that is not the repository, with the repository off the path.
    result = subprocess.run([str(installed), "__main__.py"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "URL postgresql://orders_user:generated@orders-pg:5432/orders_db ROLE role-id" in result.stdout


def test_a_project_with_its_own_components_and_stacks_builds_from_pgfleet(installed: Path, tmp_path: Path) -> None:
    project = shutil.copytree(TEAM_PROJECT, tmp_path / "team")
    (project / "run_under_mocks.py").write_text(TEAM_UNDER_MOCKS)
    result = subprocess.run([str(installed), "run_under_mocks.py", json.dumps(TOPOLOGY)], cwd=project,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    # the team's own packages, and pgfleet from the virtualenv, side by side
    assert "TEAM components stacks PGFLEET" in result.stdout
    line = next(line for line in result.stdout.splitlines() if line.startswith("EXPORTS "))
    exports_text, seen_text = line.removeprefix("EXPORTS ").split(" SEEN ")
    exports, seen = json.loads(exports_text), json.loads(seen_text)
    assert exports["database"] == "orders_db" and exports["vault_role_id"] == "role-id"
    assert exports["url"] == ("postgresql://orders_user:generated@fleet-shared:5432/orders_db"
                              "?sslmode=verify-full&sslrootcert=/etc/pgfleet/ca.crt")
    assert exports["pooled_url"].startswith("postgresql://orders_user:generated@fleet-shared-pooler:6432/orders_db")
    # it read its provisioner's login from Vault, and dialled the server as that provisioner
    assert seen == {"vault_read": ["services", "_provisioners/orders"],
                    "provisioner": ["orders_provisioner", "127.0.0.1"]}


def test_the_installed_distribution_is_one_import_root(installed: Path) -> None:
    listing = subprocess.run([str(installed), "-m", "pip", "show", "-f", "pgfleet"], capture_output=True, text=True,
                             check=True).stdout
    files = [line.strip() for line in listing.split("Files:", 1)[1].splitlines() if line.strip()]
    top = {f.split("/", 1)[0] for f in files if not f.startswith("../")}  # ../ : the console scripts
    assert top == {"pgfleet", "pgfleet-0.1.0.dist-info"}, top
    assert "pgfleet/components/isolated_database.py" in files and "pgfleet/stacks/compose.py" in files
    assert "pgfleet/stacks/config/postgres15.json" in files  # the settings catalogue validation reads
    assert "pgfleet/py.typed" in files
    # The policy pack ships whole (a pack is a directory the engine runs); the program does not.
    assert "pgfleet/policies/PulumiPolicy.yaml" in files and "pgfleet/policies/__main__.py" in files
    # ... and so does the component package, a plugin folder the engine runs
    assert "pgfleet/provider/PulumiPlugin.yaml" in files and "pgfleet/provider/__main__.py" in files
    assert not [f for f in files if f.startswith("pgfleet/tests") or f == "pgfleet/__main__.py"]


def test_the_public_api_is_listed_documented_and_typed() -> None:
    readme = (ROOT / "README.md").read_text()
    api = readme[readme.index("### The public API"):]
    api = api[:min(api.index("\n## "), api.index("\n### ", 1))]
    for name in pgfleet.__all__:
        value = getattr(pgfleet, name)
        assert f"`{name}`" in api, f"{name} is exported but not in README's public API"
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"
            assert _typed(value), f"{name} is not typed"
    # what README lists is what is exported
    listed = set(api.split("`")[1::2]) & {n for n in dir(pgfleet) if not n.startswith("_")}
    assert listed <= set(pgfleet.__all__) | {"pgfleet"}, listed - set(pgfleet.__all__)


def _typed(value: object) -> bool:
    """A function with annotations, or a class whose constructor or public methods have them."""
    if not isinstance(value, type):
        return bool(getattr(value, "__annotations__", None))
    methods = [value.__init__, *(v for k, v in vars(value).items() if callable(v) and not k.startswith("_"))]
    return any(getattr(method, "__annotations__", None) for method in methods)
