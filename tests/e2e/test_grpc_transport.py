"""gRPC through `turnout run`: grpcio clients and servers, no protoc (raw-bytes messages).

The backend is :mod:`tests.e2e.grpc_backend` (one generic handler for every method).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.e2e.conftest import free_port
from tests.e2e.grpc_backend import GrpcBackend, launch_grpc_backend


@pytest.fixture(scope="module")
def grpc_backend() -> Iterator[GrpcBackend]:
    backend = launch_grpc_backend("grpc-a", free_port())
    yield backend
    backend.stop()


def test_backend_serves_all_four_kinds_directly(grpc_backend: GrpcBackend) -> None:
    """The test backend itself, without turnout: the baseline the other tests rely on."""
    with grpc.insecure_channel(f"127.0.0.1:{grpc_backend.port}") as channel:
        reply, call = channel.unary_unary("/t.Echo/Hello").with_call(b"hi")
        assert reply == b"hi"
        assert ("x-backend", "grpc-a") in [(m.key, m.value) for m in call.initial_metadata()]
        stream = channel.unary_stream("/t.Echo/ServerStream")(b"s", metadata=[("x-count", "2")])
        assert list(stream) == [b"s-0", b"s-1"]
        assert channel.stream_unary("/t.Echo/ClientStream")(iter([b"a", b"b"])) == b"ab"
        assert list(channel.stream_stream("/t.Echo/BidiStream")(iter([b"x", b"y"]))) == [b"x", b"y"]
