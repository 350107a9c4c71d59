"""The db service: an async SQLAlchemy engine as ``app``, migrations applied at start."""

from jaseci_like_services.db.service import DbConfig, DbService

__all__ = ["DbConfig", "DbService"]
