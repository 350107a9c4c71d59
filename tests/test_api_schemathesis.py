"""Schemathesis against the running server, from the OpenAPI document it serves.

Every operation gets generated requests (valid and invalid ones), sent with a
valid API key of a superadmin so they reach the service behind the API. No
answer may be a 5xx, and every answer must be one the document promises: a
documented status, content type, headers, and a body matching its schema.
The number of examples is bounded so the whole run stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from jaseci_like_services.group_config import DotfileSpec
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_support import ApiRig, api_rig
from tests.group_config_fixtures import ROOT

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 25


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    """The API with a seeded world, so generated requests can hit real rows too."""
    with api_rig(tmp_path_factory.mktemp("api-fuzz")) as rig:
        world = rig.seed()
        rig.reset_dotfiles(world.group.id, DotfileSpec(".bashrc", "x"), DotfileSpec("a/b", "y"))
        rig.app.sync.groups.create("0", domain="acme", user=ROOT)
        yield rig


def test_no_5xx_and_every_answer_matches_the_document(served: ApiRig) -> None:
    # Operations are known only once the server runs, so they are looped over here
    # (schemathesis' lazy pytest loader does not work with this pytest).
    api_schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    headers = {"Authorization": f"Bearer {served.keys['superadmin']}"}
    failures: list[str] = []
    tested = 0
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(
                f"the document has an operation schemathesis cannot read: {result.err()}"
            )
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # No input of this operation can be made invalid (it takes none).
                assert mode is GenerationMode.NEGATIVE, operation.label
                continue
            # Collected, so one run reports every operation (schemathesis raises a
            # BaseExceptionGroup when one case fails several checks).
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
            tested += 1
    assert tested >= 40, f"only {tested} operation x mode runs: the document lost routes?"
    assert not failures, "\n\n".join(failures)
