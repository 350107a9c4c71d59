"""Errors of the kube service; each has a stable ``code`` and an exit status."""

from __future__ import annotations

from jaseci_like import JaseciLikeError


class KubeError(JaseciLikeError):
    """Base of the kube service's errors."""

    code = "kube_error"


class KubeManifestInvalid(KubeError):
    """A manifest that cannot be applied: not a manifest, defined twice, or refused by
    the Kubernetes schema. Raised before any request reaches the cluster."""

    code = "kube_manifest_invalid"
    exit_code = 3  # a configuration problem, like ConfigError

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class KubeConflict(KubeError):
    """An object of the manifests already exists in the cluster and is not managed by
    this runtime; it is left alone rather than taken over."""

    code = "kube_conflict"
    exit_code = 7


class KubeApiError(KubeError):
    """The cluster refused a request, or could not be reached."""

    code = "kube_api_error"
    exit_code = 7

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)
