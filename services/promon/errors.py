"""Errors of the promon service; each has a stable ``code``."""

from __future__ import annotations

from jaseci_like import JaseciLikeError


class PromonError(JaseciLikeError):
    """Base of the promon service's errors."""

    code = "promon_error"


class PromonUnavailable(PromonError):
    """The Prometheus server could not be reached, or did not answer in time."""

    code = "promon_unavailable"
    exit_code = 7


class PromonQueryError(PromonError):
    """The server refused a query (bad PromQL, a range too large...) or answered
    something that is not the Prometheus HTTP API."""

    code = "promon_query_refused"
    exit_code = 3
