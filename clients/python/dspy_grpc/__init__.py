"""Python client for dspy-grpc: DSPy's programming model served over gRPC.

    import dspy_grpc

    class QA(dspy_grpc.Signature):
        '''Answer with a number.'''
        question: str = dspy_grpc.InputField()
        answer: int = dspy_grpc.OutputField()

    with dspy_grpc.Client("127.0.0.1:50051") as client:
        qa = dspy_grpc.ChainOfThought(QA, client=client, lm="dummy")
        print(qa(question="What is 2+2?").answer)

The generated protobuf / gRPC stubs live in :mod:`dspy_grpc.v1`.
"""

from .budgets import Budget
from .client import DEFAULT_TARGET, AsyncClient, Client
from .coerce import OutputTypeError
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
from .composite import Composite, Ref, Retrieve, concat, constant, dedupe, flatten, join, obj, template
from .optimizations import Optimization, OptimizationCandidate, OptimizationProgress
from .modules import ChainOfThought, Ensemble, Module, Predict, ProgramModule, ReAct
from .results import AdapterFallback, Prediction, Program, RenderedPrompt, TraceStep, Usage
from .settings import configure
from .signatures import FieldInfo, InputField, OutputField, Signature
from .streaming import FieldDelta, ModuleEvent, RetrievalEvent, StreamEvent, ToolCallEvent
from .tools import Tool
from .typespec import History, Image
from .usage import UsageReport, UsageRow

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TARGET",
    "AbortedError",
    "AdapterFallback",
    "AlreadyExistsError",
    "AsyncClient",
    "Budget",
    "ChainOfThought",
    "Client",
    "Composite",
    "DeadlineExceededError",
    "Ensemble",
    "Optimization",
    "OptimizationCandidate",
    "OptimizationProgress",
    "DspyGrpcError",
    "FailedPreconditionError",
    "FieldDelta",
    "FieldInfo",
    "History",
    "Image",
    "InputField",
    "InternalError",
    "InvalidArgumentError",
    "Module",
    "ModuleEvent",
    "NotFoundError",
    "OutputField",
    "OutputTypeError",
    "PermissionDeniedError",
    "Predict",
    "Prediction",
    "Program",
    "ProgramModule",
    "ReAct",
    "Ref",
    "RetrievalEvent",
    "Retrieve",
    "RenderedPrompt",
    "ResourceExhaustedError",
    "RpcCancelledError",
    "Signature",
    "StreamEvent",
    "Tool",
    "ToolCallEvent",
    "TraceStep",
    "UnauthenticatedError",
    "UnavailableError",
    "UsageReport",
    "UsageRow",
    "Usage",
    "concat",
    "configure",
    "constant",
    "dedupe",
    "flatten",
    "join",
    "obj",
    "template",
]
