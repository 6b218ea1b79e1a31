"""Turns raw config (a Pulumi stack's keys, or a plain dict) into a checked `StackConfig`."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import ValidationError

from .checks import Problem, cross_checks
from .models import StackConfig

#: The Pulumi config keys the program reads, in the project's namespace.
CONFIG_KEYS: tuple[str, ...] = tuple(StackConfig.model_fields)
#: Secret keys, read with `get_secret` so they stay secret: never part of the validated model.
SECRET_KEYS: tuple[str, ...] = ("vaultToken", "backupS3AccessKey", "backupS3SecretKey", "backupPassphrase")


class ConfigError(Exception):
    """The config is wrong; `problems` lists each one by its key path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem{'s' * (len(problems) != 1)}):\n{lines}")


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(stack config)"


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key; check its spelling against the config reference in README.md"
    if error["type"] == "literal_error":
        return f"{message}, got {error['input']!r}"
    return message


def _problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        # pydantic names a failed annotated validator in the path; drop that noise.
        loc = tuple(part for part in loc if not (isinstance(part, str) and part.startswith("function-")))
        # ... and a dict key's error ends in '[key]': the path to the key says it already
        loc = tuple(part for part in loc if part != "[key]")
        problems.append(Problem(_path(loc), _message(item)))
    return problems


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config; raise `ConfigError` listing every problem found."""
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(_problems(error)) from None
    problems = cross_checks(config)
    if problems:
        raise ConfigError(problems)
    return config


def read_pulumi_config(namespace: str | None = None) -> dict[str, Any]:
    """The stack's non-secret keys as plain values (objects decoded from their JSON form)."""
    config = pulumi.Config(namespace)
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = config.get(key)
        if value is not None:
            raw[key] = decoded(value)
    return raw


def decoded(value: Any) -> Any:
    """A config value as the program reads it: objects arrive as their JSON text."""
    if not isinstance(value, str):
        return value  # written as YAML in a stack's file
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a plain string such as `platform: docker`


def read_secrets(namespace: str | None = None) -> dict[str, pulumi.Output[str]]:
    """The secret keys that are set and not empty, as secret Outputs."""
    config = pulumi.Config(namespace)
    secrets = {}
    for key in SECRET_KEYS:
        value = pulumi.runtime.get_config(config.full_key(key))
        if value:
            secrets[key] = pulumi.Output.secret(value)
    return secrets
