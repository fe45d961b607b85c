"""The committed OpenAPI documents are what the code generates (run `make docs` after a change)."""

import pytest

from shared.openapi import SERVICES, document, path_for, render


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_document_is_current(service):
    doc = document(service)
    assert doc is not None
    path = path_for(service)
    assert path.exists(), f"{path.name} is missing: run `make docs`"
    assert path.read_text() == render(doc), f"{path.name} is stale: run `make docs`"
