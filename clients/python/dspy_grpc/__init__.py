"""Python client for dspy-grpc: DSPy's programming model served over gRPC.

    from dspy_grpc import Client

    with Client("127.0.0.1:50051") as client:
        pred = client.predict("question -> answer", question="What is 2+2?", lm="dummy")
        print(pred.answer)

The generated protobuf / gRPC stubs live in :mod:`dspy_grpc.v1`.
"""

from .client import DEFAULT_TARGET, AsyncClient, Client
from .errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    DspyGrpcError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RpcCancelledError,
    UnauthenticatedError,
    UnavailableError,
)
from .results import Prediction, Program, TraceStep, Usage

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TARGET",
    "AbortedError",
    "AlreadyExistsError",
    "AsyncClient",
    "Client",
    "DeadlineExceededError",
    "DspyGrpcError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "Prediction",
    "Program",
    "ResourceExhaustedError",
    "RpcCancelledError",
    "TraceStep",
    "UnauthenticatedError",
    "UnavailableError",
    "Usage",
]
