"""Registers the promon service."""

from __future__ import annotations

from jaseci_like_services.promon.service import PromonService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [PromonService]
