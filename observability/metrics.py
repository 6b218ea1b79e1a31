"""The names of pgfleet's metrics, shared by the exporter's queries, the rules and the dashboards.

The exporter names a custom metric `<query name>_<column>`; every per-service series carries
`service` and `database`, and every series the `server` and `stack` its scrape target adds.
"""
from __future__ import annotations

#: Per service role: open connections and the role's connection limit (-1: none).
ROLE_CONNECTIONS = "pgfleet_role_connections"
ROLE_CONNECTION_LIMIT = "pgfleet_role_connection_limit"
#: Per service database: transactions, size.
DATABASE_COMMITS = "pgfleet_database_xact_commit_total"
DATABASE_ROLLBACKS = "pgfleet_database_xact_rollback_total"
DATABASE_SIZE = "pgfleet_database_size_bytes"
#: Per service database, from pg_stat_statements.
STATEMENT_CALLS = "pgfleet_statements_calls_total"
STATEMENT_SECONDS = "pgfleet_statements_exec_seconds_total"
SLOW_STATEMENTS = "pgfleet_statements_slow"
SLOW_CALLS = "pgfleet_statements_slow_calls_total"
STATEMENT_MAX_MEAN = "pgfleet_statements_max_mean_seconds"
#: Per server.
SERVER_CONNECTIONS = "pgfleet_server_connections"
SERVER_MAX_CONNECTIONS = "pgfleet_server_max_connections"
SERVER_DATA = "pgfleet_server_data_bytes"
SERVER_STORAGE = "pgfleet_server_storage_bytes"
REPLICAS_STREAMING = "pgfleet_replication_streaming"
REPLICAS_EXPECTED = "pgfleet_replication_expected"
REPLICA_LAG_SECONDS = "pgfleet_replica_lag_seconds"
REPLICA_LAG_BYTES = "pgfleet_replica_lag_bytes"
ARCHIVE_ENABLED = "pgfleet_wal_archive_enabled"
ARCHIVED = "pgfleet_wal_archive_archived_total"
ARCHIVE_FAILED = "pgfleet_wal_archive_failed_total"
ARCHIVE_LAST_SUCCESS = "pgfleet_wal_archive_last_archived_timestamp_seconds"
ARCHIVE_LAST_FAILURE = "pgfleet_wal_archive_last_failed_timestamp_seconds"
ARCHIVE_PENDING = "pgfleet_wal_archive_pending"
ARCHIVE_OLDEST_PENDING = "pgfleet_wal_archive_oldest_pending_seconds"
BASE_BACKUP_LAST = "pgfleet_base_backup_last_success_timestamp_seconds"
DUMP_LAST = "pgfleet_dump_last_success_timestamp_seconds"
#: Recording rules (rules.py): the ages the alerts and dashboards read.
BASE_BACKUP_AGE = "pgfleet:base_backup_age_seconds"
DUMP_AGE = "pgfleet:dump_age_seconds"
#: The exporter's own: 1 while it reaches the server.
UP = "pg_up"
