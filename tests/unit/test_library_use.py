"""Library use: `pip install` the repository, then a separate Pulumi program imports it."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.support.program import ROOT

PROGRAM = textwrap.dedent('''
    import sys
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

    import components
    from components import IsolatedDatabase, IsolatedDatabaseArgs, SharedServer, SharedServerArgs
    from components import VaultAppRole, VaultAppRoleArgs
    from components.platform.docker import DockerPlatform, DockerSettings

    assert "site-packages" in components.__file__, components.__file__

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


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv that sees the pinned SDKs of the environment running the tests (system
    packages or a virtualenv of its own) but gets pgfleet only from pip."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The SDKs: this interpreter's site-packages, after the new venv's own (where pgfleet goes).
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    sdks = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(own) / "parent-sdks.pth").write_text("".join(f"{path}\n" for path in sdks))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(ROOT)],
        check=True, capture_output=True,
    )
    return python


def test_pip_install_gives_importable_components(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    # Run from a folder that is not the repository, with the repository off the path.
    result = subprocess.run([str(installed), "__main__.py"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "URL postgresql://orders_user:generated@orders-pg:5432/orders_db ROLE role-id" in result.stdout


def test_installed_package_carries_no_tests_or_program(installed: Path) -> None:
    listing = subprocess.run([str(installed), "-m", "pip", "show", "-f", "pgfleet"], capture_output=True, text=True,
                             check=True).stdout
    assert "components/isolated_database.py" in listing and "stacks/compose.py" in listing
    assert "stacks/config/postgres15.json" in listing  # the settings catalogue validation reads
    # The policy pack ships whole (a pack is a directory the engine runs); the program does not.
    assert "policies/PulumiPolicy.yaml" in listing and "policies/__main__.py" in listing
    assert "tests/" not in listing and "\n  __main__.py\n" not in listing
