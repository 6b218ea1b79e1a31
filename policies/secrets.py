"""Which property values are secrets. pulumi-policy hands policies plain values with the secret
marking dropped; the secret-outputs policy needs it, so secret strings come back as SecretStr
(a str: every other policy reads them as before)."""
from __future__ import annotations

from typing import Any

import pulumi_policy.policy
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.deserialize import deserialize_properties as deserialize_plain


class SecretStr(str):
    """A string the engine holds as a secret."""


def _marked(value: Any) -> Any:
    """Every string in a secret value, marked."""
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, list):
        return [_marked(v) for v in value]
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    return value


def unwrap_secrets(value: Any) -> Any:
    """The engine's wire form (secrets as signature objects) with each secret replaced by its
    value, its strings marked."""
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return _marked(unwrap_secrets(value.get("value")))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    return value


def _deserialize_keeping_marks(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    if proxy_secrets:  # remediations keep pulumi-policy's own proxies; no policy here remediates
        return deserialize_plain(props, proxy_secrets)
    return deserialize_plain(unwrap_secrets(props))


def keep_secret_marks() -> None:
    """Make the analyzer hand policies SecretStr for secret strings."""
    pulumi_policy.policy.deserialize_properties = _deserialize_keeping_marks
