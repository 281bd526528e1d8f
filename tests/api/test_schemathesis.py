"""Schemathesis against the live server's /openapi.json: no 500s, and every answer's
status, content type and body match what the document promises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Running, serve
from tests.store.factories import PLANTED_MESSAGE, card_result, mail_context

pytestmark = pytest.mark.schemathesis


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server with one quarantined item and incident, so lookups have something to find."""
    with serve(tmp_path_factory.mktemp("schemathesis") / "var") as running:
        item_id = running.store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
        running.store.record_incident(card_result(), mail_context(), item_id)
        yield running


@pytest.mark.timeout(120)
def test_no_server_errors_and_documented_answers(live: Running) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    headers = {"Authorization": f"Bearer {live.tokens['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 19

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            case.call_and_validate(base_url=live.url, headers=headers, checks=checks)

        run()
