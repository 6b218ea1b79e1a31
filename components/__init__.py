"""Pulumi components for PostgreSQL per microservice: servers, isolated databases, Vault
AppRoles, backups, a certificate authority and a shared Redis, on Docker or Kubernetes through
one platform seam."""
from .backup_bucket import BackupBucket, BackupBucketArgs
from .certificate_authority import CertificateAuthority, CertificateAuthorityArgs, ServerCertificate
from .isolated_database import DRIVER_SCHEMES, IsolatedDatabase, IsolatedDatabaseArgs, tls_query
from .redis_cache import RedisCache, RedisCacheArgs
from .service_database import PlatformTopology, ServiceDatabase, ServiceDatabaseArgs
from .service_provisioner import ServiceProvisioner, ServiceProvisionerArgs
from .shared_server import PoolerArgs, ServerConnection, ServerTlsArgs, SharedServer, SharedServerArgs
from .vault_app_role import VaultAppRole, VaultAppRoleArgs

__all__ = [
    "BackupBucket", "BackupBucketArgs", "CertificateAuthority", "CertificateAuthorityArgs", "DRIVER_SCHEMES",
    "IsolatedDatabase", "IsolatedDatabaseArgs", "PoolerArgs", "RedisCache", "RedisCacheArgs", "ServerCertificate",
    "PlatformTopology", "ServerConnection", "ServerTlsArgs", "ServiceDatabase", "ServiceDatabaseArgs",
    "ServiceProvisioner", "ServiceProvisionerArgs", "SharedServer", "SharedServerArgs", "VaultAppRole",
    "VaultAppRoleArgs", "tls_query",
]
