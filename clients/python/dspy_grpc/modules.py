"""Module handles: DSPy's modules, run by the server, called like DSPy modules.

    import dspy_grpc
    from dspy_grpc import ChainOfThought, Client, InputField, OutputField, Signature

    class QA(Signature):
        \"\"\"Answer the question.\"\"\"
        question: str = InputField()
        answer: int = OutputField()

    client = Client("127.0.0.1:50051")
    qa = ChainOfThought(QA, client=client, lm="gpt-4o-mini")
    pred = qa(question="What is 2 + 2?")          # blocking, with a Client
    pred.answer                                   # 4, an int
    pred = await qa.acall(question="...")         # asyncio, with an AsyncClient

A handle holds no server state: each call sends the module (or the stored program's name). The
client is ``client=`` or the one set with :func:`dspy_grpc.configure`; a handle may be given a
:class:`~dspy_grpc.Client` and an :class:`~dspy_grpc.AsyncClient` is then taken from
``configure`` for ``acall`` (and the other way round).

LMs, from the strongest: ``lm=`` of a call, ``lm=`` of the module (both become the predictor's LM),
then the configured default (sent as the request's LM, used by predictors that name none). A
stored program's own LMs win over all of these: for a program, ``lm=`` only fills in predictors
that name no LM.

The keyword arguments ``lm``, ``include_trace``, ``timeout`` and ``metadata`` of a call are options;
every other keyword argument is an input field.

Each handle also streams (``stream`` / ``astream``: events, then the prediction), runs batches
(``batch`` / ``abatch``), renders its prompt (``render``) and parses completions (``parse``).
:class:`ReAct` agents call Python functions of this process as tools, through ``InferenceService.Run``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from . import _requests as rq
from . import _streams
from .client import AsyncClient, Client, Metadata
from .errors import DspyGrpcError
from .results import Prediction, RenderedPrompt, typed_outputs
from .settings import settings
from .signatures import SignatureMeta
from .streaming import StreamEvent
from .tools import Tool, to_tool
from .v1 import module_pb2
from .values import exact_or

__all__ = ["Module", "Predict", "ChainOfThought", "ReAct", "Ensemble", "ProgramModule"]

ToolLike = Tool | Callable[..., Any] | str

#: Keyword arguments of calls and renders that are options, not inputs.
CALL_OPTIONS = frozenset({"lm", "include_trace", "timeout", "metadata", "predictor", "adapter"})


class Module:
    """Base class of module handles: calling, rendering and parsing through a client."""

    #: How long the server waits for each tool result (``None``: until the call's deadline).
    tool_timeout: float | None = None

    def __init__(self, *, client: Client | AsyncClient | None = None, lm: rq.LMLike = None) -> None:
        if client is not None and not isinstance(client, (Client, AsyncClient)):
            raise TypeError(f"client must be a dspy_grpc.Client or AsyncClient, not {type(client).__name__}")
        self.client = client
        self.lm = lm

    # -- what subclasses provide

    def _target(self, lm: rq.LMLike) -> module_pb2.ModuleSpec | str:
        """The ``ModuleSpec`` (with ``lm`` as the predictor's LM when given) or the program name."""

        raise NotImplementedError

    def _request_lm(self, lm: rq.LMLike) -> rq.LMLike:
        """The request-level LM of a call given ``lm=``."""

        return settings.lm

    def _output_types(self) -> dict[str, Any] | None:
        return None

    def tools_here(self) -> dict[str, Tool]:
        """The tools this process runs for the module, by name (calls then go through ``Run``)."""

        return {}

    # -- clients

    def _sync_client(self) -> Client:
        client = self.client if isinstance(self.client, Client) else settings.client
        if client is None:
            hint = " (it has an AsyncClient: use `await module.acall(...)`)" if self.client is not None else ""
            raise RuntimeError(
                f"no blocking client for this module{hint}; pass client=Client(...) or call "
                "dspy_grpc.configure(client=Client(...))"
            )
        return client

    def _async_client(self) -> AsyncClient:
        client = self.client if isinstance(self.client, AsyncClient) else settings.async_client
        if client is None:
            hint = " (it has a blocking Client: call `module(...)`)" if self.client is not None else ""
            raise RuntimeError(
                f"no AsyncClient for this module{hint}; pass client=AsyncClient(...) or call "
                "dspy_grpc.configure(client=AsyncClient(...))"
            )
        return client

    # -- predict

    def _request(self, lm: rq.LMLike, include_trace: bool, inputs: dict[str, Any]) -> Any:
        return rq.predict_request(self._target(lm), inputs, lm=self._request_lm(lm), include_trace=include_trace)

    def __call__(
        self, *, lm: rq.LMLike = None, include_trace: bool = False, timeout: float | None = None,
        metadata: Metadata = None, **inputs: Any,
    ) -> Prediction:
        """Run the module on ``inputs`` (blocking). Raises a ``DspyGrpcError`` subclass on failure.
        Inside a :class:`~dspy_grpc.Composite`'s ``forward()`` it records a step instead."""

        from .composite import record_call

        recorded = record_call(self, inputs)
        if recorded is not None:
            return recorded  # type: ignore[return-value]
        request = self._request(lm, include_trace, inputs)
        client = self._sync_client()
        if self.tools_here():
            events = client._run(request, self.tools_here(), self.tool_timeout, timeout, metadata, self._output_types())
            return _streams.last_prediction(events)
        return Prediction(client._predict(request, timeout, metadata).prediction, self._output_types())

    async def acall(
        self, *, lm: rq.LMLike = None, include_trace: bool = False, timeout: float | None = None,
        metadata: Metadata = None, **inputs: Any,
    ) -> Prediction:
        """Run the module on ``inputs`` (asyncio)."""

        request = self._request(lm, include_trace, inputs)
        client = self._async_client()
        if self.tools_here():
            events = client._run(request, self.tools_here(), self.tool_timeout, timeout, metadata, self._output_types())
            return await _streams.alast_prediction(events)
        return Prediction((await client._predict(request, timeout, metadata)).prediction, self._output_types())

    # -- batches

    def batch(
        self, inputs: Sequence[Mapping[str, Any]], *, lm: rq.LMLike = None, include_trace: bool = False,
        max_concurrency: int = 0, timeout: float | None = None, metadata: Metadata = None,
    ) -> list[Prediction | DspyGrpcError]:
        """Run the module on many inputs at once (``BatchPredict``, at most ``max_concurrency`` at a time;
        0: the server's default). Returns one entry per input, in order: its :class:`Prediction`, or
        the typed error it failed with (one item's failure does not fail the others)."""

        self._no_tools_here("batch")
        request = self._request(lm, include_trace, {})
        return self._sync_client()._batch(request, inputs, max_concurrency, timeout, metadata, self._output_types())

    async def abatch(
        self, inputs: Sequence[Mapping[str, Any]], *, lm: rq.LMLike = None, include_trace: bool = False,
        max_concurrency: int = 0, timeout: float | None = None, metadata: Metadata = None,
    ) -> list[Prediction | DspyGrpcError]:
        """:meth:`batch`, asyncio."""

        self._no_tools_here("abatch")
        request = self._request(lm, include_trace, {})
        client = self._async_client()
        return await client._batch(request, inputs, max_concurrency, timeout, metadata, self._output_types())

    def _no_tools_here(self, method: str) -> None:
        if self.tools_here():
            raise ValueError(f"{method}() cannot run tools in this process; call the module once per input instead")

    # -- streaming

    def stream(
        self, *, lm: rq.LMLike = None, include_trace: bool = False, timeout: float | None = None,
        metadata: Metadata = None, **inputs: Any,
    ) -> Iterator[StreamEvent]:
        """Run the module, yielding :class:`~dspy_grpc.FieldDelta` s as the LM writes, module and tool
        events, and last the :class:`Prediction`. Stop iterating to cancel the run."""

        request = self._request(lm, include_trace, inputs)
        client = self._sync_client()
        if self.tools_here():
            return client._run(request, self.tools_here(), self.tool_timeout, timeout, metadata, self._output_types())
        return client._stream(request, timeout, metadata, self._output_types())

    def astream(
        self, *, lm: rq.LMLike = None, include_trace: bool = False, timeout: float | None = None,
        metadata: Metadata = None, **inputs: Any,
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`stream`, asyncio: ``async for event in module.astream(...)``."""

        request = self._request(lm, include_trace, inputs)
        client = self._async_client()
        if self.tools_here():
            return client._run(request, self.tools_here(), self.tool_timeout, timeout, metadata, self._output_types())
        return client._stream(request, timeout, metadata, self._output_types())

    # -- render and parse

    def render(
        self, *, predictor: str = "", adapter: str | None = None, timeout: float | None = None, **inputs: Any
    ) -> RenderedPrompt:
        """The messages the module's predictor would send for ``inputs`` (no LM call), like
        ``adapter.format(...)`` in DSPy. ``adapter`` renders with another adapter than the predictor's;
        ``predictor`` names one predictor of a multi-predictor program."""

        request = rq.render_request(self._target(None), inputs, predictor=predictor, adapter=adapter)
        return RenderedPrompt.from_proto(self._sync_client()._render(request, timeout))

    async def arender(
        self, *, predictor: str = "", adapter: str | None = None, timeout: float | None = None, **inputs: Any
    ) -> RenderedPrompt:
        """:meth:`render`, asyncio."""

        request = rq.render_request(self._target(None), inputs, predictor=predictor, adapter=adapter)
        return RenderedPrompt.from_proto(await self._async_client()._render(request, timeout))

    def parse(
        self, completion: str, *, predictor: str = "", adapter: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Parse an LM completion into output values (typed as the signature declares), like
        ``adapter.parse(...)`` in DSPy. Raises ``FailedPreconditionError`` (``PARSE_ERROR``) if it does not fit."""

        request = rq.parse_request(self._target(None), completion, predictor=predictor, adapter=adapter)
        response = self._sync_client()._parse(request, timeout)
        return typed_outputs(_outputs(response), self._output_types())

    async def aparse(
        self, completion: str, *, predictor: str = "", adapter: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """:meth:`parse`, asyncio."""

        request = rq.parse_request(self._target(None), completion, predictor=predictor, adapter=adapter)
        response = await self._async_client()._parse(request, timeout)
        return typed_outputs(_outputs(response), self._output_types())


def _outputs(response: Any) -> dict[str, Any]:
    return exact_or(response.outputs_json, response.outputs)


class _Inline(Module):
    """A module sent inline with every call: one predictor over a signature."""

    _kind = "predict"

    def __init__(
        self,
        signature: rq.SignatureLike,
        *,
        client: Client | AsyncClient | None = None,
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | None = None,
        extraction_lm: rq.LMLike = None,
    ) -> None:
        super().__init__(client=client, lm=lm)
        rq.signature(signature, instructions)  # fail now on a bad signature argument
        if isinstance(signature, SignatureMeta) and CALL_OPTIONS & set(signature.input_fields):
            clash = sorted(CALL_OPTIONS & set(signature.input_fields))
            raise ValueError(f"input field(s) {clash} clash with call options; rename them")
        self.signature = signature
        self.instructions = instructions
        self.demos: list[rq.DemoLike] = list(demos or ())
        self.adapter = adapter
        self.extraction_lm = extraction_lm

    def module_spec(self, lm: rq.LMLike = None) -> module_pb2.ModuleSpec:
        """The ``ModuleSpec`` sent to the server (``lm`` replaces the module's LM); store it with
        ``client.create_program("qa", module)``."""

        predictor = rq.predictor_spec(
            self.signature, lm=lm if lm is not None else self.lm, instructions=self.instructions,
            demos=self.demos, adapter=self.adapter, extraction_lm=self.extraction_lm,
        )
        return rq.wrap(predictor, self._kind)

    def _target(self, lm: rq.LMLike) -> module_pb2.ModuleSpec:
        return self.module_spec(lm)

    def _output_types(self) -> dict[str, Any] | None:
        return rq.output_types(self.signature, self._kind)

    def __repr__(self) -> str:
        signature = self.signature if isinstance(self.signature, (str, SignatureMeta)) else "Signature(...)"
        return f"{type(self).__name__}({signature!r})"


class Predict(_Inline):
    """``dspy.Predict(signature)``: one LM call.

    Args:
        signature: a DSPy string signature (``"question -> answer: int"``), a
            :class:`~dspy_grpc.Signature` subclass, or a ``dspy_grpc.v1.Signature``.
        client: the :class:`~dspy_grpc.Client` or :class:`~dspy_grpc.AsyncClient` to call through.
        lm: the predictor's LM: a model alias, a scripted dummy LM dict, or an ``LMSpec``.
        instructions: replace the signature's instructions.
        demos: few-shot demos, dicts of field values (``module.demos`` may be changed later).
        adapter: ``"chat"`` (default), ``"json"``, ``"xml"`` or ``"two_step"`` (with ``extraction_lm``).
        extraction_lm: the LM that extracts the fields with the two-step adapter.
    """


class ChainOfThought(_Inline):
    """``dspy.ChainOfThought(signature)``: adds a ``reasoning`` output before the others.

    Takes the same arguments as :class:`Predict`; predictions have ``pred.reasoning``.
    """

    _kind = "chain_of_thought"


class ReAct(_Inline):
    """``dspy.ReAct(signature, tools, max_iters)``: an agent that calls tools, then answers.

    ``tools`` are plain Python callables (described to the LM by name, docstring and type hints,
    run in this process when the agent calls them — synchronously or awaited in ``acall``),
    :class:`~dspy_grpc.Tool` s, or names of the server's built-in tools (``"calculator"``). Calls
    with tools of this process go through ``InferenceService.Run``. Predictions carry
    ``trajectory`` (thought_0, tool_name_0, tool_args_0, observation_0, ...), ``reasoning`` and the
    signature's outputs. ``tool_timeout`` bounds the wait for each tool result (seconds).
    """

    _kind = "react"

    def __init__(
        self,
        signature: rq.SignatureLike,
        tools: Sequence[ToolLike],
        *,
        max_iters: int = 20,
        client: Client | AsyncClient | None = None,
        lm: rq.LMLike = None,
        instructions: str | None = None,
        adapter: str | None = None,
        tool_timeout: float | None = None,
    ) -> None:
        super().__init__(signature, client=client, lm=lm, instructions=instructions, adapter=adapter)
        self.tools = [to_tool(t) for t in tools]
        names = [t.name for t in self.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tool names must be unique; repeated: {duplicates}")
        self.max_iters = max_iters
        self.tool_timeout = tool_timeout

    def module_spec(self, lm: rq.LMLike = None) -> module_pb2.ModuleSpec:
        predictor = rq.predictor_spec(
            self.signature, lm=lm if lm is not None else self.lm, instructions=self.instructions,
            adapter=self.adapter,
        )
        return module_pb2.ModuleSpec(react=module_pb2.ReActModule(
            predictor=predictor, tools=[t.to_proto() for t in self.tools], max_iters=self.max_iters,
        ))

    def tools_here(self) -> dict[str, Tool]:
        return {t.name: t for t in self.tools if t.runs_here}

    def _output_types(self) -> dict[str, Any] | None:
        types = rq.output_types(self.signature)
        return None if types is None else {"trajectory": Any, "reasoning": str, **types}


class Ensemble(Module):
    """``dspy.Ensemble(reduce_fn=..., size=...).compile(programs)``: each call runs ``size`` of the
    ``programs`` (all when None) on the same inputs, on the server, concurrently.

    ``reduce="majority"`` (``dspy.majority``) returns the outputs of the first program whose
    ``field`` value (default: the last output) is the most common; ``reduce=None`` (DSPy's default)
    returns every program's outputs as ``completions``. The sample is seeded by ``seed`` and the
    inputs, so the same call always runs the same programs. ``programs`` are :class:`Predict`,
    :class:`ChainOfThought` or :class:`ReAct` handles (or other ensembles); ``lm`` of a call or of
    the ensemble becomes every program's LM.
    """

    def __init__(
        self,
        programs: Sequence[Module],
        *,
        reduce: str | None = None,
        size: int | None = None,
        seed: int = 0,
        field: str = "",
        client: Client | AsyncClient | None = None,
        lm: rq.LMLike = None,
    ) -> None:
        super().__init__(client=client, lm=lm)
        if reduce not in (None, "majority"):
            raise ValueError('reduce must be "majority" or None')
        if not all(hasattr(program, "module_spec") for program in programs):
            raise TypeError("programs must be inline module handles (Predict, ChainOfThought, ReAct, Ensemble)")
        self.programs = list(programs)
        self.reduce, self.size, self.seed, self.field = reduce, size, seed, field

    def module_spec(self, lm: rq.LMLike = None) -> module_pb2.ModuleSpec:
        """The ``ModuleSpec`` sent to the server (``lm`` replaces every program's LM)."""

        chosen = lm if lm is not None else self.lm
        reduce = module_pb2.ENSEMBLE_REDUCE_MAJORITY if self.reduce == "majority" else module_pb2.ENSEMBLE_REDUCE_NONE
        return module_pb2.ModuleSpec(ensemble=module_pb2.EnsembleModule(
            programs=[program.module_spec(chosen) for program in self.programs],  # type: ignore[attr-defined]
            reduce=reduce, size=self.size or 0, seed=self.seed, field=self.field,
        ))

    def _target(self, lm: rq.LMLike) -> module_pb2.ModuleSpec:
        return self.module_spec(lm)

    def tools_here(self) -> dict[str, Tool]:
        return {name: tool for program in self.programs for name, tool in program.tools_here().items()}

    def _output_types(self) -> dict[str, Any] | None:
        return self.programs[0]._output_types() if self.reduce == "majority" and self.programs else None

    def __repr__(self) -> str:
        return f"Ensemble({self.programs!r}, reduce={self.reduce!r}, size={self.size!r})"


class ProgramModule(Module):
    """A stored program, called like a module: ``client.program("qa")(question="...")``.

    ``name`` is ``"programs/qa"`` (the newest revision at each call) or ``"programs/qa@r0002"``
    (pinned). ``signature``, a :class:`~dspy_grpc.Signature` subclass matching the program's,
    gives typed outputs. ``lm`` is sent as the request's LM: it serves predictors of the program
    that name no LM of their own. ``tools`` are the callables this process runs for the program's
    ReAct agents (matched by name with the program's tools).
    """

    def __init__(
        self,
        name: str,
        *,
        client: Client | AsyncClient | None = None,
        lm: rq.LMLike = None,
        signature: SignatureMeta | None = None,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        tool_timeout: float | None = None,
    ) -> None:
        super().__init__(client=client, lm=lm)
        if signature is not None and not isinstance(signature, SignatureMeta):
            raise TypeError("signature must be a dspy_grpc.Signature subclass (it gives the outputs their types)")
        self.name = rq.program_name(name)
        self.signature = signature
        self.tools = [to_tool(t) for t in tools]
        self.tool_timeout = tool_timeout

    def tools_here(self) -> dict[str, Tool]:
        return {t.name: t for t in self.tools if t.runs_here}

    def _target(self, lm: rq.LMLike) -> str:
        return self.name

    def _request_lm(self, lm: rq.LMLike) -> rq.LMLike:
        for choice in (lm, self.lm, settings.lm):
            if choice is not None:
                return choice
        return None

    def _output_types(self) -> dict[str, Any] | None:
        return rq.output_types(self.signature)

    def __repr__(self) -> str:
        return f"ProgramModule({self.name!r})"

