"""Which real services the integration tests use: the local stack unless told otherwise."""

from __future__ import annotations

import pytest

from tests.support.services import backend


def test_the_local_stack_is_the_default_even_where_docker_answers() -> None:
    assert backend({}) == "stack"
    assert backend({"CALLSTREAM_TEST_BACKEND": ""}) == "stack"


def test_containers_only_when_asked() -> None:
    assert backend({"CALLSTREAM_TEST_BACKEND": "containers"}) == "containers"


def test_an_unknown_backend_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="CALLSTREAM_TEST_BACKEND"):
        backend({"CALLSTREAM_TEST_BACKEND": "docker"})
