"""pgfleet: PostgreSQL done right for every microservice, as Pulumi components.

The public API is what `__all__` lists, importable from `pgfleet` itself:

- components: `SharedServer`, `IsolatedDatabase`, `VaultAppRole`, `BackupBucket`,
  `CertificateAuthority`, `RedisCache`, each with its typed `...Args`, and `ServerConnection`
  (what a database needs from its server);
- the platform seam: `Platform` (the protocol components build on), `DockerPlatform` and
  `KubernetesPlatform` with their settings (imported on first use, so a program on one
  platform never imports the other's provider SDK);
- service-owned stacks: `ServiceDatabase` declares one service's database and AppRole from
  a platform stack's topology (`PlatformTopology`), through that service's own provisioner;
- the stack builder: `run_stack` (what the pgfleet program's `__main__.py` runs), `StackConfig`,
  `parse_config` and `ConfigError`.

Everything else under `pgfleet.components`, `pgfleet.stacks`, `pgfleet.observability` (the
exporter queries, rules and dashboards a stack config implies), `pgfleet.operations` and
`pgfleet.policies` is internal: importable, but free to change between releases.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .components import (
    DRIVER_SCHEMES,
    BackupBucket,
    BackupBucketArgs,
    CertificateAuthority,
    CertificateAuthorityArgs,
    IsolatedDatabase,
    IsolatedDatabaseArgs,
    PoolerArgs,
    RedisCache,
    RedisCacheArgs,
    ServerConnection,
    ServerTlsArgs,
    SharedServer,
    SharedServerArgs,
    VaultAppRole,
    VaultAppRoleArgs,
)
from .components.platform import Platform
from .components.service_database import PlatformTopology, ServiceDatabase, ServiceDatabaseArgs
from .stacks import ConfigError, StackConfig, parse_config
from .stacks import run as run_stack

if TYPE_CHECKING:
    from .components.platform.docker import DockerPlatform, DockerSettings
    from .components.platform.kubernetes import KubernetesPlatform, KubernetesSettings

#: Platform classes by name, and the module each lives in (imported on first use).
_PLATFORMS = {
    "DockerPlatform": ".components.platform.docker",
    "DockerSettings": ".components.platform.docker",
    "KubernetesPlatform": ".components.platform.kubernetes",
    "KubernetesSettings": ".components.platform.kubernetes",
}


def __getattr__(name: str) -> Any:
    if name in _PLATFORMS:
        return getattr(import_module(_PLATFORMS[name], __name__), name)
    raise AttributeError(f"module 'pgfleet' has no attribute {name!r}")


__all__ = [
    # components
    "BackupBucket", "BackupBucketArgs", "CertificateAuthority", "CertificateAuthorityArgs", "DRIVER_SCHEMES",
    "IsolatedDatabase", "IsolatedDatabaseArgs", "PoolerArgs", "RedisCache", "RedisCacheArgs", "ServerConnection",
    "ServerTlsArgs", "SharedServer", "SharedServerArgs", "VaultAppRole", "VaultAppRoleArgs",
    # the platform seam
    "DockerPlatform", "DockerSettings", "KubernetesPlatform", "KubernetesSettings", "Platform",
    # service-owned stacks
    "PlatformTopology", "ServiceDatabase", "ServiceDatabaseArgs",
    # the stack builder
    "ConfigError", "StackConfig", "parse_config", "run_stack",
]
