"""The promon service: a Prometheus HTTP API client and the Jaseci monitoring helpers."""

from jaseci_like_services.promon.client import PrometheusClient, Sample, Series
from jaseci_like_services.promon.config import PromonConfig
from jaseci_like_services.promon.errors import PromonError, PromonQueryError, PromonUnavailable
from jaseci_like_services.promon.service import PromonService, Traffic

__all__ = [
    "PrometheusClient",
    "PromonConfig",
    "PromonError",
    "PromonQueryError",
    "PromonService",
    "PromonUnavailable",
    "Sample",
    "Series",
    "Traffic",
]
