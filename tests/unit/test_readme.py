"""The README's config reference names every config key the models accept."""
from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from pgfleet.stacks.config import models
from tests.support.program import ROOT

README = (ROOT / "README.md").read_text()
REFERENCE = README[README.index("## Config reference"):README.index("## The seed systems")]
SECTIONS: list[type[BaseModel]] = [
    models.StackConfig, models.ServiceConfig, models.ServerSettings, models.VaultConfig, models.BackupConfig,
    models.BackupTargetConfig, models.RedisConfig, models.PoolerConfig, models.DockerConfig, models.KubernetesConfig,
    models.ImagesConfig, models.MonitoringConfig, models.AlertsConfig,
]


@pytest.mark.parametrize("section", SECTIONS, ids=[s.__name__ for s in SECTIONS])
def test_every_key_is_documented(section: type[BaseModel]) -> None:
    for name, field in section.model_fields.items():
        key = field.alias or name
        assert re.search(rf"\b{re.escape(key)}\b", REFERENCE), f"{section.__name__}.{key} is missing from README"


def test_readme_gives_the_two_commands() -> None:
    assert "bash scripts/dev-up.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_pulumi_yaml_declares_every_plain_key_and_requires_none() -> None:
    import yaml

    from pgfleet.stacks.config import CONFIG_KEYS, SECRET_KEYS

    text = (ROOT / "Pulumi.yaml").read_text()
    declared = yaml.safe_load(text)["config"]
    assert set(declared) == set(CONFIG_KEYS)
    # A declared key without a default is required of every stack (pulumi/pulumi#21797), and a
    # declared secret needs an encrypted value in every stack: secrets are listed in a comment.
    # (services or service_stacks must hold one: validation says so, naming the key)
    assert {key for key, spec in declared.items() if "default" not in spec} == set()
    assert all(f"#   {key}" in text for key in SECRET_KEYS)


@pytest.mark.parametrize("path", ["Pulumi.dev.yaml", "Pulumi.prod.yaml"])
def test_committed_stack_files_carry_no_machine_secrets_setup(path: str) -> None:
    # A committed passphrase salt would make `pulumi up` fail on every other machine.
    text = (ROOT / path).read_text()
    assert "encryptionsalt" not in text and "secretsprovider" not in text and "encryptedkey" not in text
