"""pytest fixtures over tests.helpers (loaded for every test by tests/conftest.py)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Iterator

import pytest

from tests.helpers import HttpServer, serve_app, serve_http


@pytest.fixture
def uvicorn_server() -> Iterator[Callable[[Any], str]]:
    """uvicorn_server(app) -> base URL of the app served on a free port; stopped after the test."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_app(app))


@pytest.fixture
def http_server() -> Iterator[Callable[[type], HttpServer]]:
    """http_server(HandlerClass) -> a running HttpServer (`.url`); shut down after the test."""
    with ExitStack() as stack:
        yield lambda handler: stack.enter_context(serve_http(handler))
