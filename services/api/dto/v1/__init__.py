"""Version 1 of the API's bodies (``/v1``).

>>> from jaseci_like_services.api.dto.v1 import DotfileCreateV1
>>> DotfileCreateV1(data="set nu").permission
'644'
"""

from jaseci_like_services.api.dto.v1.common import ErrorV1, Request
from jaseci_like_services.api.dto.v1.dotfiles import (
    DotfileCopyV1,
    DotfileCreateV1,
    DotfileImportItemV1,
    DotfileImportV1,
    DotfileListV1,
    DotfileSearchV1,
    DotfileUpdateV1,
    DotfileV1,
    DotfileWrittenV1,
)
from jaseci_like_services.api.dto.v1.groups import (
    GroupCreateV1,
    GroupListV1,
    GroupRenameV1,
    GroupV1,
)
from jaseci_like_services.api.dto.v1.probes import HealthV1, ReadinessV1, ServiceReadinessV1
from jaseci_like_services.api.dto.v1.tasks import TaskAcceptedV1, TaskStatusV1
from jaseci_like_services.api.dto.v1.users import (
    UserCreateV1,
    UserListV1,
    UserRoleV1,
    UserV1,
)

__all__ = [
    "DotfileCopyV1",
    "DotfileCreateV1",
    "DotfileImportItemV1",
    "DotfileImportV1",
    "DotfileListV1",
    "DotfileSearchV1",
    "DotfileUpdateV1",
    "DotfileV1",
    "DotfileWrittenV1",
    "ErrorV1",
    "GroupCreateV1",
    "GroupListV1",
    "GroupRenameV1",
    "GroupV1",
    "HealthV1",
    "ReadinessV1",
    "Request",
    "ServiceReadinessV1",
    "TaskAcceptedV1",
    "TaskStatusV1",
    "UserCreateV1",
    "UserListV1",
    "UserRoleV1",
    "UserV1",
]
