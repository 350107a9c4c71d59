"""The kube service: the ``kubernetes`` client as ``app``; manifests planned and applied."""

from jaseci_like_services.kube.config import KubeConfig
from jaseci_like_services.kube.errors import (
    KubeApiError,
    KubeConflict,
    KubeError,
    KubeManifestInvalid,
)
from jaseci_like_services.kube.manifests import Desired, Key, Marks, Source
from jaseci_like_services.kube.plan import Action
from jaseci_like_services.kube.service import KubeService

__all__ = [
    "Action",
    "Desired",
    "Key",
    "KubeApiError",
    "KubeConfig",
    "KubeConflict",
    "KubeError",
    "KubeManifestInvalid",
    "KubeService",
    "Marks",
    "Source",
]
