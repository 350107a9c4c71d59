"""A thin typed client of the Prometheus HTTP API (``/api/v1``), over httpx.

Chosen over ``prometheus-api-client``: that library pulls pandas, numpy and
matplotlib for a handful of GET requests, is untyped, and gives no per-request
timeout; this one is a few endpoints with typed answers and typed errors.

>>> client = PrometheusClient("http://127.0.0.1:9090", timeout=2.0)  # no request yet
>>> client.close()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from jaseci_like_services.promon.errors import PromonQueryError, PromonUnavailable

from jaseci_like.config.secrets import mask_url


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector: its labels, value and time (Unix seconds)."""

    labels: Mapping[str, str]
    value: float
    timestamp: float

    def label(self, name: str) -> str:
        return self.labels.get(name, "")


@dataclass(frozen=True)
class Series:
    """One element of a range vector: labels and ``(timestamp, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...] = field(default=())


def _number(text: Any) -> float:
    # The API sends values as strings: "1", "NaN", "+Inf".
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


class PrometheusClient:
    """Requests to one Prometheus server; errors are :class:`PromonUnavailable`
    (not reached) or :class:`PromonQueryError` (refused), never carrying a secret."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        token: str | None = None,
        verify: bool = True,
    ) -> None:
        parts = urlsplit(url)
        auth: httpx.BasicAuth | None = None
        if parts.username is not None:
            auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.hostname or ""
        if ":" in netloc:  # an IPv6 literal
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        #: The server's address with no credential in it: safe to show.
        self.where = mask_url(base)
        self.http = httpx.Client(
            base_url=base, auth=auth, headers=headers, timeout=timeout, verify=verify
        )

    def close(self) -> None:
        self.http.close()

    # -- requests ---------------------------------------------------------------------
    def _get(
        self, path: str, params: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> httpx.Response:
        try:
            if timeout is None:
                return self.http.get(path, params=params)
            return self.http.get(path, params=params, timeout=timeout)
        except httpx.TimeoutException:
            raise PromonUnavailable(
                f"Prometheus at {self.where} did not answer {path} in time"
            ) from None
        except httpx.HTTPError as exc:
            raise PromonUnavailable(
                f"cannot reach Prometheus at {self.where} ({type(exc).__name__}); "
                "check promon.url and that the server runs"
            ) from None

    def _api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The ``data`` of an ``/api/v1`` answer; a refusal raises with its error text."""
        response = self._get(path, params)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            if response.status_code >= 500 or response.status_code in (401, 403):
                raise PromonUnavailable(
                    f"Prometheus at {self.where} answered {path} with HTTP {response.status_code}"
                )
            raise PromonQueryError(
                f"{self.where}{path} answered HTTP {response.status_code}, not the Prometheus API"
            )
        if body["status"] != "success":
            kind = body.get("errorType") or "error"
            raise PromonQueryError(f"Prometheus refused {path}: {kind}: {body.get('error', '')}")
        return body.get("data")

    def ready(self, timeout: float | None = None) -> bool:
        """True when the server says it is ready to serve queries (``/-/ready``)."""
        return self._get("/-/ready", timeout=timeout).status_code == 200

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query; a scalar answer comes back as one sample with no labels."""
        params = {"query": promql}
        if at is not None:
            params["time"] = repr(at)
        data = self._api("/api/v1/query", params)
        kind = data.get("resultType") if isinstance(data, dict) else None
        result = data.get("result") if isinstance(data, dict) else None
        if kind in ("scalar", "string") and isinstance(result, list):
            return [Sample({}, _number(result[1]), float(result[0]))]
        if kind != "vector" or not isinstance(result, list):
            raise PromonQueryError(f"{promql!r} gave a {kind}, not an instant vector")
        return [
            Sample(dict(item["metric"]), _number(item["value"][1]), float(item["value"][0]))
            for item in result
        ]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (Unix seconds) every ``step`` seconds."""
        params = {"query": promql, "start": repr(start), "end": repr(end), "step": repr(step)}
        data = self._api("/api/v1/query_range", params)
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list):
            raise PromonQueryError(f"{promql!r} gave no matrix")
        return [
            Series(
                dict(item["metric"]),
                tuple((float(t), _number(v)) for t, v in item.get("values", [])),
            )
            for item in result
        ]

    def build_info(self) -> dict[str, str]:
        """Version, revision, Go version... of the server."""
        data = self._api("/api/v1/status/buildinfo")
        return {str(k): str(v) for k, v in (data or {}).items()}

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets, with their health and last error."""
        data = self._api("/api/v1/targets", {"state": "active"})
        found = data.get("activeTargets") if isinstance(data, dict) else None
        return list(found or [])
