"""The platform seam: `Platform` and the specs components hand to it.

`DockerPlatform` and `KubernetesPlatform` live in their own modules so that importing the seam
does not import either provider SDK; import the one you need.
"""
from .base import (
    ADMIN_LABEL,
    FILE_SET_GROUP,
    SERVER_LABEL,
    DataMount,
    DataVolume,
    FileSetRef,
    HealthCheck,
    JobSpec,
    Platform,
    PortSpec,
    ProcessSpec,
    RunningProcess,
    StorageRef,
    dns_name,
)

__all__ = [
    "ADMIN_LABEL", "FILE_SET_GROUP", "SERVER_LABEL", "DataMount", "DataVolume", "FileSetRef", "HealthCheck", "JobSpec",
    "Platform", "PortSpec",
    "ProcessSpec", "RunningProcess", "StorageRef", "dns_name",
]
