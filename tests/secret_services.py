"""Services holding secrets, for ``tests/test_secrets.py``: in-process, and through
the real command line (a small distribution whose plugin module imports them, with
the repository root on PYTHONPATH).

Each can be told to fail its start with an error that repeats its secrets, as a
library's error may.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import SecretStr

from jaseci_like import CommonService, MemoryHook, Sensitive, ServiceConfig, hookimpl


class VaultService(CommonService):
    """No schema (the seed's way): every key free-form; ``key`` and ``token`` are
    secrets by their names only."""

    name = "vault"
    default_config: ClassVar[dict[str, Any]] = {
        "enabled": True,
        "key": "",
        "token": "",
        "region": "eu-1",
        "fail": False,
    }

    def run(self, hook: MemoryHook | None = None) -> None:
        if self.config.get("fail"):
            raise ConnectionError(
                f"vault refused key {self.config['key']} and token {self.config['token']}"
            )
        self.app = dict(self.config)


class StripeConfig(ServiceConfig):
    """The README's example, as written: a plain ``str`` named ``key``."""

    key: str = ""


class StripeService(CommonService):
    name = "stripe"
    config_schema = StripeConfig
    default_config: ClassVar[dict[str, Any]] = {"enabled": True, "key": ""}

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = {"api_key": self.config["key"]}


class SignerConfig(ServiceConfig):
    """Secrets marked by type, under names no name rule would catch."""

    signing: SecretStr = SecretStr("")
    seal: Annotated[str, Sensitive()] = ""
    fail: bool = False


class SignerService(CommonService):
    name = "signer"
    config_schema = SignerConfig
    default_config: ClassVar[dict[str, Any]] = {"enabled": True}

    def run(self, hook: MemoryHook | None = None) -> None:
        signing = self.config["signing"].get_secret_value()
        if self.config["fail"]:
            raise RuntimeError(f"signer rejected {signing} sealed with {self.config['seal']}")
        self.app = {"signing": signing}


class SecretsPlugin:
    """The services above, as an in-code plugin."""

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return [VaultService, StripeService, SignerService]
