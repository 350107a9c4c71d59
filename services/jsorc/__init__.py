"""The jsorc service: keeps services alive, deploying what they need on Kubernetes."""

from jaseci_like_services.jsorc.config import JsOrcConfig
from jaseci_like_services.jsorc.errors import DeployTimeout, JsOrcError
from jaseci_like_services.jsorc.orchestrator import Orchestrator
from jaseci_like_services.jsorc.report import STATUS_GLOB, Status, Step
from jaseci_like_services.jsorc.service import JsOrcService

__all__ = [
    "STATUS_GLOB",
    "DeployTimeout",
    "JsOrcConfig",
    "JsOrcError",
    "JsOrcService",
    "Orchestrator",
    "Status",
    "Step",
]
