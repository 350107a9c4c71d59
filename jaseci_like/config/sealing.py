"""Secrets at rest: the secret values of stored config are encrypted (Fernet).

``config_set`` seals every secret leaf (marked by the schema, named like a
credential, or a URL with a password) before the glob reaches the stores; the
SQL row and the Redis hash hold ``{"$sealed": "<token>"}`` in its place. Reading
the stored layer unseals it. The key comes from the environment,
``JASECI_LIKE_SECRET_KEY`` (a Fernet key; several, comma-separated, to rotate:
the first seals, any of them unseals), the same in every process sharing the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jaseci_like.config.secrets import SecretPaths, is_secret_leaf
from jaseci_like.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_ENV = "JASECI_LIKE_SECRET_KEY"
#: The key of the mapping that stands for a sealed value in stored JSON.
SEALED = "$sealed"
_HOW = (
    f"set {KEY_ENV} to a Fernet key (make one with `jaseci-like config new-secret-key`), "
    "the same in every process sharing the config store"
)


class SecretKeyError(ConfigError):
    """A secret cannot be stored or read: no key, an invalid key, or the wrong key."""

    code = "secret_key"


def new_key() -> str:
    """A fresh key for ``JASECI_LIKE_SECRET_KEY``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class Sealer:
    """Seals and unseals the secret leaves of stored config with the keys given."""

    def __init__(self, keys: str | None) -> None:
        self._keys = [k.strip() for k in (keys or "").split(",") if k.strip()]
        self._fernet: MultiFernet | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Sealer:
        return cls(environ.get(KEY_ENV))

    def _crypto(self, what: str) -> MultiFernet:
        if self._fernet is not None:
            return self._fernet
        if not self._keys:
            raise SecretKeyError(f"{what}: secrets are stored encrypted; {_HOW}")
        from cryptography.fernet import Fernet, MultiFernet

        try:
            self._fernet = MultiFernet([Fernet(k) for k in self._keys])
        except ValueError:
            raise SecretKeyError(
                f"{what}: {KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes); {_HOW}"
            ) from None
        return self._fernet

    def seal(self, section: str, doc: Mapping[str, Any], paths: SecretPaths) -> dict[str, Any]:
        """``doc`` (a stored config of ``section``) with every secret leaf encrypted."""
        return self._seal(section, doc, (), paths)

    def _seal(
        self, section: str, doc: Mapping[str, Any], at: tuple[str, ...], paths: SecretPaths
    ) -> dict[str, Any]:
        import json

        out: dict[str, Any] = {}
        for key, value in doc.items():
            path = (*at, str(key))
            if _is_sealed(value):
                out[key] = value
            elif isinstance(value, Mapping) and not is_secret_leaf(path, value, paths):
                out[key] = self._seal(section, value, path, paths)
            elif is_secret_leaf(path, value, paths):
                where = ".".join((section, *path))
                token = self._crypto(f"{where} is a secret").encrypt(json.dumps(value).encode())
                out[key] = {SEALED: token.decode()}
            else:
                out[key] = value
        return out

    def unseal(self, section: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """``doc`` (a stored config of ``section``) with every sealed value decrypted."""
        return self._unseal(section, doc, ())

    def _unseal(self, section: str, doc: Mapping[str, Any], at: tuple[str, ...]) -> dict[str, Any]:
        import json

        from cryptography.fernet import InvalidToken

        out: dict[str, Any] = {}
        for key, value in doc.items():
            path = (*at, str(key))
            if _is_sealed(value):
                where = ".".join((section, *path))
                crypto = self._crypto(f"{where} is stored encrypted; to read it")
                try:
                    out[key] = json.loads(crypto.decrypt(str(value[SEALED]).encode()))
                except (InvalidToken, ValueError):
                    raise SecretKeyError(
                        f"{where} is stored encrypted with another key than {KEY_ENV} "
                        "holds (or the stored value is damaged); set the key it was stored "
                        "with, or store the value again"
                    ) from None
            elif isinstance(value, Mapping):
                out[key] = self._unseal(section, value, path)
            else:
                out[key] = value
        return out


def _is_sealed(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {SEALED}


def without_secrets(
    doc: Mapping[str, Any], paths: SecretPaths | None = None, at: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``doc`` without its secret leaves (what a store may keep of packaged defaults:
    the defaults themselves are the lowest layer, so leaving a secret out changes
    no effective value)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = (*at, str(key))
        if is_secret_leaf(path, value, paths):
            continue
        out[key] = without_secrets(value, paths, path) if isinstance(value, Mapping) else value
    return out
