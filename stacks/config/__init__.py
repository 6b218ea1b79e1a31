"""Stack config: pydantic models, reusable types, cross-section checks and the loader."""
from .checks import Problem, cross_checks
from .loader import CONFIG_KEYS, SECRET_KEYS, ConfigError, parse_config, read_pulumi_config, read_secrets
from .models import (
    BackupConfig,
    BackupTargetConfig,
    DockerConfig,
    ImagesConfig,
    KubernetesConfig,
    MonitoringConfig,
    RedisConfig,
    ServerConfig,
    ServerSettings,
    ServiceConfig,
    StackConfig,
    VaultConfig,
)

__all__ = [
    "BackupConfig", "BackupTargetConfig", "CONFIG_KEYS", "ConfigError", "DockerConfig", "ImagesConfig",
    "KubernetesConfig", "MonitoringConfig", "Problem", "RedisConfig", "SECRET_KEYS", "ServerConfig", "ServerSettings",
    "ServiceConfig", "StackConfig", "VaultConfig", "cross_checks", "parse_config", "read_pulumi_config",
    "read_secrets",
]
