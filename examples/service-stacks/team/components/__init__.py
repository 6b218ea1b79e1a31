"""The team's own components (a name every Pulumi project may use; pgfleet's live under `pgfleet`)."""
from .service_database import team_database

__all__ = ["team_database"]
