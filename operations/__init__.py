"""Day-two operations on a deployed stack: restores from its backups (`pgfleet-restore`)."""
