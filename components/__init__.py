"""Pulumi components for PostgreSQL per microservice: servers, isolated databases, Vault
AppRoles, backups and a shared Redis, on Docker or Kubernetes through one platform seam."""
from .backup_bucket import BackupBucket, BackupBucketArgs
from .isolated_database import DRIVER_SCHEMES, IsolatedDatabase, IsolatedDatabaseArgs
from .redis_cache import RedisCache, RedisCacheArgs
from .shared_server import PoolerArgs, ServerConnection, SharedServer, SharedServerArgs
from .vault_app_role import VaultAppRole, VaultAppRoleArgs

__all__ = [
    "BackupBucket", "BackupBucketArgs", "DRIVER_SCHEMES", "IsolatedDatabase", "IsolatedDatabaseArgs",
    "PoolerArgs", "RedisCache", "RedisCacheArgs", "ServerConnection", "SharedServer", "SharedServerArgs",
    "VaultAppRole", "VaultAppRoleArgs",
]
