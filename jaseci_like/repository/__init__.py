"""Generic repository utilities: specs for each kind of SQL work, pages, scopes, errors.

Plugins build their db sources from these (SQLAlchemy Core over an
``AsyncEngine``); the core imports none of it, so importing ``jaseci_like``
stays cheap::

    from jaseci_like.repository import Creator, DbOps, Querier

    ops = DbOps(engine)
    async with ops.write_ops() as w:
        row = await w.create(Creator(users, {"id": user_id, "email": email}))
    async with ops.read_ops() as r:
        same = await r.query(Querier(users, user_id))
"""

from jaseci_like.repository.bulk import BulkFailure, BulkResult, run_partial
from jaseci_like.repository.creator import BulkCreator, Creator, DependentCreatorSpec
from jaseci_like.repository.driver_reads import DriverReads, driver_reads_of, use_driver_reads
from jaseci_like.repository.errors import (
    AlreadyExists,
    CheckViolation,
    CommitOutcomeUnknown,
    ConstraintViolation,
    DatabaseUnavailable,
    EmptySearchScope,
    FailureReason,
    InvalidQuery,
    InvalidValue,
    NotNullViolation,
    ReferenceNotFound,
    RepositoryError,
    StillReferenced,
    WriteQueueStalled,
    constraint_kind,
    is_connection_lost,
    is_transient,
    translate_integrity_error,
    translate_row_error,
)
from jaseci_like.repository.pagination import (
    CursorPagination,
    OffsetPagination,
    Order,
    Page,
    Pagination,
)
from jaseci_like.repository.purger import BatchPurger, Purger
from jaseci_like.repository.querier import BatchQuerier, Querier, WithParent
from jaseci_like.repository.readers import (
    ChangeStamp,
    ReaderBusy,
    one_statement,
    reader_of,
    transaction_engines,
    use_change_stamp,
    use_reader,
)
from jaseci_like.repository.resilience import (
    OperationMetrics,
    Resilience,
    RetryEvent,
    RetryPolicy,
    outcome_of,
    resilient,
)
from jaseci_like.repository.scope import (
    DomainScope,
    GroupScope,
    ScopeColumns,
    SearchScope,
    UserScope,
)
from jaseci_like.repository.transaction import DbOps, ReadOps, WriteOps
from jaseci_like.repository.types import UtcDateTime, utcnow
from jaseci_like.repository.updater import (
    UNSET,
    BatchUpdater,
    OptionalState,
    Unset,
    Updater,
    changed,
)
from jaseci_like.repository.upserter import BulkUpserter, Upserter
from jaseci_like.repository.write_queue import serialize_writes, write_turn

__all__ = [
    "UNSET",
    "AlreadyExists",
    "BatchPurger",
    "BatchQuerier",
    "BatchUpdater",
    "BulkCreator",
    "BulkFailure",
    "BulkResult",
    "BulkUpserter",
    "ChangeStamp",
    "CheckViolation",
    "CommitOutcomeUnknown",
    "ConstraintViolation",
    "Creator",
    "CursorPagination",
    "DatabaseUnavailable",
    "DbOps",
    "DependentCreatorSpec",
    "DomainScope",
    "DriverReads",
    "EmptySearchScope",
    "FailureReason",
    "GroupScope",
    "InvalidQuery",
    "InvalidValue",
    "NotNullViolation",
    "OffsetPagination",
    "OperationMetrics",
    "OptionalState",
    "Order",
    "Page",
    "Pagination",
    "Purger",
    "Querier",
    "ReadOps",
    "ReaderBusy",
    "ReferenceNotFound",
    "RepositoryError",
    "Resilience",
    "RetryEvent",
    "RetryPolicy",
    "ScopeColumns",
    "SearchScope",
    "StillReferenced",
    "Unset",
    "Updater",
    "Upserter",
    "UserScope",
    "UtcDateTime",
    "WithParent",
    "WriteOps",
    "WriteQueueStalled",
    "changed",
    "constraint_kind",
    "driver_reads_of",
    "is_connection_lost",
    "is_transient",
    "one_statement",
    "outcome_of",
    "reader_of",
    "resilient",
    "run_partial",
    "serialize_writes",
    "transaction_engines",
    "translate_integrity_error",
    "translate_row_error",
    "use_change_stamp",
    "use_driver_reads",
    "use_reader",
    "utcnow",
    "write_turn",
]
