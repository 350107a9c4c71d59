"""Errors of the jsorc service; each has a stable ``code``."""

from __future__ import annotations

from jaseci_like import JaseciLikeError


class JsOrcError(JaseciLikeError):
    """Base of the jsorc service's errors."""

    code = "jsorc_error"


class DeployTimeout(JsOrcError):
    """The manifests were applied, but the service's pods were not Running and Ready,
    or its Endpoints had no address, within ``wait_timeout``."""

    code = "jsorc_deploy_timeout"
    exit_code = 7
