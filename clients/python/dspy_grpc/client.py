"""The clients: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio). Same methods, same results.

    from dspy_grpc import Client

    with Client("127.0.0.1:50051") as client:
        pred = client.predict("question -> answer", question="What is the capital of France?", lm="gpt-4o-mini")
        print(pred.answer)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import grpc

from . import _requests as rq
from . import budgets as bq
from . import optimizations as oq
from . import _streams
from . import usage as usage_queries
from .errors import from_rpc_error
from .results import Prediction, Program, RenderedPrompt, typed_outputs
from .budgets import Budget
from .optimizations import MetricLike, Optimization, OptimizationCandidate
from .usage import UsageReport, UsageRow
from .v1 import (
    budget_pb2,
    budget_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    module_pb2,
    optimization_pb2,
    optimization_pb2_grpc,
    program_pb2,
    program_pb2_grpc,
    usage_pb2_grpc,
)
from .values import exact_or

if TYPE_CHECKING:
    from .modules import ProgramModule
    from .streaming import StreamEvent

__all__ = ["Client", "AsyncClient", "DEFAULT_TARGET"]

DEFAULT_TARGET = "127.0.0.1:50051"

Metadata = Sequence[tuple[str, str]] | Mapping[str, str] | None
#: A signature (string, ``Signature`` subclass or proto) or a whole ``ModuleSpec``.
SignatureLike = rq.SignatureLike | module_pb2.ModuleSpec

_MODULE_PARTS = ("module", "signature", "lm", "instructions", "demos", "adapter")


def _metadata(value: Metadata) -> list[tuple[str, str]]:
    if value is None:
        return []
    items = value.items() if isinstance(value, Mapping) else value
    return [(str(k).lower(), v) for k, v in items]


def _credentials(secure: bool, credentials: grpc.ChannelCredentials | None) -> grpc.ChannelCredentials | None:
    if credentials is not None:
        return credentials
    return grpc.ssl_channel_credentials() if secure else None


def _create_request(
    program_id: str, signature: SignatureLike, *, module: str, lm: rq.LMLike, instructions: str | None,
    demos: Sequence[rq.DemoLike] | None, adapter: str | int | None, display_name: str, description: str,
    labels: Mapping[str, str] | None,
) -> program_pb2.CreateProgramRequest:
    module_spec = getattr(signature, "module_spec", None)  # a Predict / ChainOfThought handle
    if callable(module_spec):
        spec = module_spec()
    elif isinstance(signature, module_pb2.ModuleSpec):
        spec = signature
    else:
        spec = rq.module_spec(signature, module=module, lm=lm, instructions=instructions, demos=demos, adapter=adapter)
    return program_pb2.CreateProgramRequest(
        program_id=program_id.removeprefix(rq.PROGRAM_PREFIX),
        program=rq.program_proto(module=spec, display_name=display_name, description=description, labels=labels),
    )


def _update_request(
    name: str, current: program_pb2.Program | None, *, display_name: str | None, description: str | None,
    labels: Mapping[str, str] | None, module_spec: module_pb2.ModuleSpec | None, etag: str | None,
    parts: dict[str, Any],
) -> program_pb2.UpdateProgramRequest:
    paths: list[str] = []
    program = program_pb2.Program(name=rq.program_name(name))
    if display_name is not None:
        program.display_name = display_name
        paths.append("display_name")
    if description is not None:
        program.description = description
        paths.append("description")
    if labels is not None:
        program.labels.update(labels)
        paths.append("labels")
    if module_spec is not None:
        program.module.CopyFrom(module_spec)
        paths.append("module")
    elif current is not None:
        program.module.CopyFrom(rq.modify_module(current.module, signature_=parts.pop("signature"), **parts))
        paths.append("module")
    if not paths:
        raise ValueError("update_program: nothing to update")
    if etag is not None:
        program.etag = etag
    elif current is not None:
        program.etag = current.etag  # we read-modify-write the module: fail if it changed meanwhile
    return program_pb2.UpdateProgramRequest(program=program, update_mask=rq.field_mask(paths))


class _Base:
    def __init__(self, timeout: float | None, metadata: Metadata) -> None:
        self.timeout = timeout
        self.metadata = _metadata(metadata)

    def _opts(self, timeout: float | None, metadata: Metadata = None) -> dict[str, Any]:
        return {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": self.metadata + _metadata(metadata) or None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self, 'target', '?')!r}, timeout={self.timeout!r})"


class Client(_Base):
    """A blocking client for a dspy-grpc server.

    Args:
        target: ``host:port`` of the server.
        timeout: default deadline of each call in seconds (``None``: no deadline).
        metadata: gRPC metadata sent with every call, e.g. ``{"x-request-id": "..."}``.
        secure: use TLS with the system's root certificates.
        credentials: explicit channel credentials (implies TLS).
        options: extra gRPC channel options.
        channel: an existing ``grpc.Channel`` to use instead (not closed by :meth:`close`).

    Every method raises a :class:`~dspy_grpc.errors.DspyGrpcError` subclass when the call fails.
    Do not use it from a thread that runs an asyncio event loop serving the same process — use
    :class:`AsyncClient` there.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float | None = 30.0,
        metadata: Metadata = None,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        super().__init__(timeout, metadata)
        self.target = target
        self._owns_channel = channel is None
        if channel is None:
            creds = _credentials(secure, credentials)
            opts = list(options or [])
            channel = grpc.secure_channel(target, creds, opts) if creds else grpc.insecure_channel(target, opts)
        self.channel = channel
        self._inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self._programs = program_pb2_grpc.ProgramServiceStub(channel)
        self._budgets = budget_pb2_grpc.BudgetServiceStub(channel)
        self._usage = usage_pb2_grpc.UsageServiceStub(channel)
        self._optimizations = optimization_pb2_grpc.OptimizationServiceStub(channel)

    def close(self) -> None:
        """Close the channel (if the client created it)."""

        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None, metadata: Metadata = None) -> Any:
        try:
            return method(request, **self._opts(timeout, metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def predict(
        self,
        signature_or_program: SignatureLike | Program,
        inputs: Mapping[str, Any] | None = None,
        *,
        module: str = "predict",
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        include_trace: bool = False,
        timeout: float | None = None,
        metadata: Metadata = None,
        **input_kwargs: Any,
    ) -> Prediction:
        """Run an inline module or a stored program once.

        Args:
            signature_or_program: a signature run inline — DSPy's string form (``"question -> answer"``)
                or a :class:`~dspy_grpc.Signature` subclass (outputs then get its Python types) — or a
                stored program name (``"programs/qa"``, ``"programs/qa@r0002"``) or :class:`Program`.
            inputs: input field values; keyword arguments are added to them.
            module: ``"predict"`` or ``"chain_of_thought"`` (inline signatures only).
            lm: a model alias (``"gpt-4o-mini"``, ``"dummy"``), a scripted dummy LM
                (``{"responses": [{"answer": "Paris"}]}``), or ``None`` for the server's default.
            instructions: task instructions (inline only).
            demos: few-shot demos as dicts of field values (inline only).
            adapter: ``"chat"`` (default), ``"json"``, ``"xml"`` or ``"two_step"`` (inline only).
            include_trace: return the per-predictor trace in :attr:`Prediction.trace`.
            timeout: deadline in seconds for this call (default: the client's).
            metadata: extra gRPC metadata for this call.
        """

        request = rq.predict_request(
            signature_or_program, rq.merge_inputs(inputs, input_kwargs), module=module, lm=lm,
            instructions=instructions, demos=demos, adapter=adapter, include_trace=include_trace,
        )
        response = self._predict(request, timeout, metadata)
        return Prediction(response.prediction, rq.output_types(signature_or_program, module))

    def render_prompt(
        self,
        signature_or_program: SignatureLike | Program,
        inputs: Mapping[str, Any] | None = None,
        *,
        module: str = "predict",
        predictor: str = "",
        adapter: str | int | None = None,
        timeout: float | None = None,
        **input_kwargs: Any,
    ) -> RenderedPrompt:
        """The exact messages a predictor would send to its LM for these inputs, without calling it.

        Takes a signature run inline as ``module``, or a stored program; ``adapter`` renders with
        another adapter than the predictor's; ``predictor`` picks one in a multi-predictor program.
        """

        request = rq.render_request(
            signature_or_program, rq.merge_inputs(inputs, input_kwargs), module=module, predictor=predictor,
            adapter=adapter,
        )
        return RenderedPrompt.from_proto(self._render(request, timeout))

    def parse_completion(
        self,
        signature_or_program: SignatureLike | Program,
        completion: str,
        *,
        module: str = "predict",
        predictor: str = "",
        adapter: str | int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Parse an LM completion into output values the way the predictor's adapter would.

        Raises :class:`~dspy_grpc.errors.FailedPreconditionError` (reason ``PARSE_ERROR``) when the
        completion does not fit the signature.
        """

        request = rq.parse_request(signature_or_program, completion, module=module, predictor=predictor, adapter=adapter)
        response = self._parse(request, timeout)
        outputs = exact_or(response.outputs_json, response.outputs)
        return typed_outputs(outputs, rq.output_types(signature_or_program, module))

    def program(
        self, name: str, *, lm: rq.LMLike = None, signature: Any = None, tools: Sequence[Any] = (),
        tool_timeout: float | None = None,
    ) -> ProgramModule:
        """A handle that calls the stored program ``name`` like a module: ``client.program("qa")(question=...)``.

        See :class:`~dspy_grpc.ProgramModule`; nothing is fetched until it is called.
        """

        from .modules import ProgramModule

        return ProgramModule(name, client=self, lm=lm, signature=signature, tools=tools, tool_timeout=tool_timeout)

    def stream_predict(
        self,
        signature_or_program: SignatureLike | Program,
        inputs: Mapping[str, Any] | None = None,
        *,
        module: str = "predict",
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        include_trace: bool = False,
        timeout: float | None = None,
        metadata: Metadata = None,
        **input_kwargs: Any,
    ) -> Iterator[StreamEvent]:
        """:meth:`predict`, streamed: :class:`~dspy_grpc.FieldDelta` s as the LM writes, module and
        tool events, then the :class:`Prediction` (always last). Stop iterating to cancel the run."""

        request = rq.predict_request(
            signature_or_program, rq.merge_inputs(inputs, input_kwargs), module=module, lm=lm,
            instructions=instructions, demos=demos, adapter=adapter, include_trace=include_trace,
        )
        return self._stream(request, timeout, metadata, rq.output_types(signature_or_program, module))

    def _predict(self, request: inference_pb2.PredictRequest, timeout: float | None, metadata: Metadata = None) -> Any:
        return self._call(self._inference.Predict, request, timeout, metadata)

    def _stream(
        self, request: inference_pb2.PredictRequest, timeout: float | None, metadata: Metadata,
        output_types: Mapping[str, Any] | None,
    ) -> Iterator[StreamEvent]:
        call = self._inference.StreamPredict(_streams.stream_request(request), **self._opts(timeout, metadata))
        return _streams.stream_sync(call, output_types)

    def _batch(
        self, request: inference_pb2.PredictRequest, items: Sequence[Mapping[str, Any]], max_concurrency: int,
        timeout: float | None, metadata: Metadata, output_types: Mapping[str, Any] | None,
    ) -> list[Any]:
        call = self._inference.BatchPredict(
            _streams.batch_request(request, items, max_concurrency), **self._opts(timeout, metadata)
        )
        try:
            return _streams.batch_results(call, len(items), output_types)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def _run(
        self, request: inference_pb2.PredictRequest, tools: Mapping[str, Any], tool_timeout: float | None,
        timeout: float | None, metadata: Metadata, output_types: Mapping[str, Any] | None,
    ) -> Iterator[StreamEvent]:
        opts = self._opts(timeout, metadata)

        def start(requests: Iterable[inference_pb2.RunRequest]) -> Any:
            return self._inference.Run(iter(requests), **opts)

        return _streams.run_sync(start, _streams.start_message(request, tools, tool_timeout), tools, output_types)

    def _render(self, request: inference_pb2.RenderPromptRequest, timeout: float | None) -> Any:
        return self._call(self._inference.RenderPrompt, request, timeout)

    def _parse(self, request: inference_pb2.ParseCompletionRequest, timeout: float | None) -> Any:
        return self._call(self._inference.ParseCompletion, request, timeout)

    def create_program(
        self,
        program_id: str,
        signature: SignatureLike,
        *,
        module: str = "predict",
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        display_name: str = "",
        description: str = "",
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Program:
        """Store a program (its first revision, ``r0001``) as ``programs/{program_id}``.

        ``signature`` is a DSPy string signature, a ``Signature`` proto, or a full ``ModuleSpec``
        (then ``module``, ``lm``, ``instructions``, ``demos`` and ``adapter`` are ignored).
        Raises :class:`~dspy_grpc.errors.AlreadyExistsError` if the id is taken.
        """

        request = _create_request(
            program_id, signature, module=module, lm=lm, instructions=instructions, demos=demos, adapter=adapter,
            display_name=display_name, description=description, labels=labels,
        )
        return Program.from_proto(self._call(self._programs.CreateProgram, request, timeout))

    def get_program(self, name: str, *, timeout: float | None = None) -> Program:
        """A program at its newest revision, or at ``"programs/qa@r0001"``. ``"qa"`` works too."""

        request = program_pb2.GetProgramRequest(name=rq.program_name(name))
        return Program.from_proto(self._call(self._programs.GetProgram, request, timeout))

    def list_programs(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[Program]:
        """All programs in id order, each at its newest revision (pages are fetched as you iterate)."""

        token = ""
        while True:
            request = program_pb2.ListProgramsRequest(page_size=page_size, page_token=token)
            response = self._call(self._programs.ListPrograms, request, timeout)
            yield from (Program.from_proto(p) for p in response.programs)
            token = response.next_page_token
            if not token:
                return

    def list_program_revisions(self, name: str, *, page_size: int = 0, timeout: float | None = None) -> Iterator[Program]:
        """A program at each of its revisions, newest first."""

        token = ""
        while True:
            request = program_pb2.ListProgramRevisionsRequest(
                name=rq.program_name(name), page_size=page_size, page_token=token
            )
            response = self._call(self._programs.ListProgramRevisions, request, timeout)
            yield from (Program.from_proto(p) for p in response.programs)
            token = response.next_page_token
            if not token:
                return

    def update_program(
        self,
        name: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        module: str | None = None,
        signature: rq.SignatureLike | None = None,
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        module_spec: module_pb2.ModuleSpec | None = None,
        etag: str | None = None,
        timeout: float | None = None,
    ) -> Program:
        """Create a new revision with the given parts replaced; ``None`` leaves a part unchanged.

        ``module`` (``"predict"`` / ``"chain_of_thought"``), ``signature``, ``lm``, ``instructions``,
        ``demos`` and ``adapter`` change the stored module: the client reads the program, edits its
        module and sends it back with the etag it read, so a concurrent change fails with
        :class:`~dspy_grpc.errors.AbortedError` instead of being overwritten. ``module_spec``
        replaces the module wholesale. ``etag``, when given, must match the newest revision.
        """

        parts = dict(module=module, signature=signature, lm=lm, instructions=instructions, demos=demos, adapter=adapter)
        current = None
        if module_spec is None and any(v is not None for v in parts.values()):
            current = self.get_program(name, timeout=timeout).raw
        request = _update_request(
            name, current, display_name=display_name, description=description, labels=labels,
            module_spec=module_spec, etag=etag, parts=parts,
        )
        return Program.from_proto(self._call(self._programs.UpdateProgram, request, timeout))

    def delete_program(self, name: str, *, etag: str = "", timeout: float | None = None) -> None:
        """Delete a program and all its revisions (``etag``, when given, must match)."""

        request = program_pb2.DeleteProgramRequest(name=rq.program_name(name), etag=etag)
        self._call(self._programs.DeleteProgram, request, timeout)

    # ------------------------------------------------------------------ budgets (admin scope)

    def create_budget(self, budget_id: str, *, limit_usd: Decimal | str | int | None = None, limit_micros: int | None = None,
                      program: str = "", api_key_id: str = "", period: str = "day",
                      timeout: float | None = None) -> Budget:
        """Limit what a program (``program="qa"``) or an API key spends per ``period`` ("day",
        "month", "total"). Give the limit exactly: ``limit_usd=Decimal("0.10")`` / ``"0.10"``, or
        ``limit_micros=100_000``."""

        request = bq.create_request(budget_id, limit_usd=limit_usd, limit_micros=limit_micros, program=program,
                                    api_key_id=api_key_id, period=period)
        return Budget.from_proto(self._call(self._budgets.CreateBudget, request, timeout))

    def get_budget(self, name: str, *, timeout: float | None = None) -> Budget:
        """A budget with what it spent in its current period (``"team-a"`` or ``"budgets/team-a"``)."""

        request = budget_pb2.GetBudgetRequest(name=bq.budget_name(name))
        return Budget.from_proto(self._call(self._budgets.GetBudget, request, timeout))

    def list_budgets(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[Budget]:
        """Every budget (config and created ones) in id order, with spent and remaining amounts."""

        token = ""
        while True:
            request = budget_pb2.ListBudgetsRequest(page_size=page_size, page_token=token)
            response = self._call(self._budgets.ListBudgets, request, timeout)
            yield from (Budget.from_proto(b) for b in response.budgets)
            token = response.next_page_token
            if not token:
                return

    def update_budget(self, name: str, *, limit_usd: Decimal | str | int | None = None, limit_micros: int | None = None,
                      period: str | None = None, etag: str = "", timeout: float | None = None) -> Budget:
        """Change a budget's limit and/or period (``etag``, when given, must match)."""

        request = bq.update_request(name, limit_usd=limit_usd, limit_micros=limit_micros, period=period, etag=etag)
        return Budget.from_proto(self._call(self._budgets.UpdateBudget, request, timeout))

    def delete_budget(self, name: str, *, etag: str = "", timeout: float | None = None) -> None:
        """Delete a budget (``etag``, when given, must match)."""

        request = budget_pb2.DeleteBudgetRequest(name=bq.budget_name(name), etag=etag)
        self._call(self._budgets.DeleteBudget, request, timeout)


    def query_usage(
        self, *, period: str = "total", group_by: Iterable[str] = (), programs: Iterable[str] = (),
        api_key_ids: Iterable[str] = (), models: Iterable[str] = (), start: _dt.date | str | None = None,
        end: _dt.date | str | None = None, page_size: int = 0, timeout: float | None = None,
    ) -> UsageReport:
        """LM calls, tokens and cost from the usage ledger (needs an ``admin`` key).

        ``period`` is ``"total"``, ``"day"`` or ``"month"`` (UTC); ``group_by`` keeps ``"program"``,
        ``"api_key"`` and/or ``"model"`` apart; ``programs`` (``"qa"`` or ``"programs/qa"``; ``""``
        for inline modules), ``api_key_ids`` and ``models`` filter; ``start``/``end`` are inclusive
        days. Every page is fetched."""

        rows, token, total = [], "", None
        while True:
            request = usage_queries.query_request(
                period=period, group_by=group_by, programs=programs, api_key_ids=api_key_ids, models=models,
                start=start, end=end, page_size=page_size, page_token=token)
            response = self._call(self._usage.QueryUsage, request, timeout)
            rows.extend(UsageRow.from_proto(row) for row in response.rows)
            total, token = UsageRow.from_proto(response.total), response.next_page_token
            if not token:
                return UsageReport(rows, total)

    # ------------------------------------------------------------------ optimization jobs

    def start_gepa(
        self, program: str, dataset: str, *, reflection_lm: rq.LMLike, metric: MetricLike,
        auto: str | None = None, max_metric_calls: int | None = None, max_full_evals: int | None = None,
        reflection_minibatch_size: int | None = None, candidate_selection_strategy: str | None = None,
        skip_perfect_score: bool | None = None, component_selector: str | None = None, use_merge: bool | None = None,
        max_merge_invocations: int | None = None, failure_score: float | None = None,
        perfect_score: float | None = None, seed: int | None = None, task_lm: rq.LMLike = None, num_threads: int = 0,
        max_errors: int | None = None, activate: bool = False, display_name: str = "", optimization_id: str = "",
        timeout: float | None = None,
    ) -> Optimization:
        """Start a GEPA job on ``program`` ("qa", "programs/qa" or "programs/qa@r0001") with the examples
        of ``dataset``: exactly one of ``auto`` ("light", "medium", "heavy"), ``max_metric_calls`` and
        ``max_full_evals``; ``reflection_lm`` proposes the instructions (a model alias or an ``lm=`` form).
        Unset settings take DSPy 3.4.1's defaults. Returns the queued job (follow it with
        :meth:`watch_optimization`)."""

        settings = oq.gepa_settings(
            reflection_lm=reflection_lm, auto=auto, max_metric_calls=max_metric_calls, max_full_evals=max_full_evals,
            reflection_minibatch_size=reflection_minibatch_size,
            candidate_selection_strategy=candidate_selection_strategy, skip_perfect_score=skip_perfect_score,
            component_selector=component_selector, use_merge=use_merge, max_merge_invocations=max_merge_invocations,
            failure_score=failure_score, perfect_score=perfect_score, seed=seed)
        request = oq.create_request(program, dataset, "gepa", settings, metric=metric, task_lm=task_lm,
                                    num_threads=num_threads, max_errors=max_errors, activate=activate,
                                    display_name=display_name, optimization_id=optimization_id)
        return Optimization.from_proto(self._call(self._optimizations.CreateOptimization, request, timeout))

    def start_simba(
        self, program: str, dataset: str, *, metric: MetricLike, bsize: int | None = None,
        num_candidates: int | None = None, max_steps: int | None = None, max_demos: int | None = None,
        demo_input_field_maxlen: int | None = None, temperature_for_sampling: float | None = None,
        temperature_for_candidates: float | None = None, seed: int | None = None, task_lm: rq.LMLike = None,
        num_threads: int = 0, max_errors: int | None = None, activate: bool = False, display_name: str = "",
        optimization_id: str = "", timeout: float | None = None,
    ) -> Optimization:
        """Start a SIMBA job on ``program`` with the examples of ``dataset``; unset settings take DSPy
        3.4.1's defaults (bsize 32, 6 candidates, 8 steps, 4 demos). Returns the queued job."""

        settings = {"bsize": bsize, "num_candidates": num_candidates, "max_steps": max_steps, "max_demos": max_demos,
                    "demo_input_field_maxlen": demo_input_field_maxlen,
                    "temperature_for_sampling": temperature_for_sampling,
                    "temperature_for_candidates": temperature_for_candidates, "seed": seed}
        request = oq.create_request(program, dataset, "simba", settings, metric=metric, task_lm=task_lm,
                                    num_threads=num_threads, max_errors=max_errors, activate=activate,
                                    display_name=display_name, optimization_id=optimization_id)
        return Optimization.from_proto(self._call(self._optimizations.CreateOptimization, request, timeout))

    def get_optimization(self, name: str, *, timeout: float | None = None) -> Optimization:
        """An optimization job ("opt-1" or "optimizations/opt-1") as it is now."""

        request = optimization_pb2.GetOptimizationRequest(name=oq.optimization_name(name))
        return Optimization.from_proto(self._call(self._optimizations.GetOptimization, request, timeout))

    def cancel_optimization(self, name: str, *, timeout: float | None = None) -> Optimization:
        """Ask a job to stop; it ends "cancelled" (a finished job is returned unchanged)."""

        request = optimization_pb2.CancelOptimizationRequest(name=oq.optimization_name(name))
        return Optimization.from_proto(self._call(self._optimizations.CancelOptimization, request, timeout))

    def watch_optimization(self, name: str, *, timeout: float | None = None) -> Iterator[Optimization]:
        """The job now, then after each change of its state or progress, until it finishes (the last
        one yielded is finished). ``timeout`` bounds the whole watch (default: none)."""

        request = optimization_pb2.WatchOptimizationRequest(name=oq.optimization_name(name))
        options = {**self._opts(timeout), "timeout": timeout}  # no default deadline: a job may run for hours
        call = self._optimizations.WatchOptimization(request, **options)
        try:
            for message in call:
                job = Optimization.from_proto(message.optimization)
                yield job
                if job.done:
                    return
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        finally:
            call.cancel()  # the caller may stop early

    def wait_optimization(self, name: str, *, timeout: float | None = None) -> Optimization:
        """The job once it has finished (watched, not polled)."""

        job = None
        for job in self.watch_optimization(name, timeout=timeout):
            pass
        assert job is not None and job.done
        return job

    def list_optimization_candidates(
        self, name: str, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[OptimizationCandidate]:
        """The candidates the job evaluated, in order (GEPA: with parents and per-example scores)."""

        token = ""
        while True:
            request = optimization_pb2.ListOptimizationCandidatesRequest(
                parent=oq.optimization_name(name), page_size=page_size, page_token=token)
            response = self._call(self._optimizations.ListOptimizationCandidates, request, timeout)
            yield from (OptimizationCandidate.from_proto(c) for c in response.candidates)
            token = response.next_page_token
            if not token:
                return


class AsyncClient(_Base):
    """An asyncio client for a dspy-grpc server; the same API as :class:`Client`, with ``await``.

        async with AsyncClient("127.0.0.1:50051") as client:
            pred = await client.predict("question -> answer", question="2+2?", lm="dummy")
            async for program in client.list_programs():
                print(program.name)

    Create it inside a running event loop.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float | None = 30.0,
        metadata: Metadata = None,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(timeout, metadata)
        self.target = target
        self._owns_channel = channel is None
        if channel is None:
            creds = _credentials(secure, credentials)
            opts = list(options or [])
            channel = grpc.aio.secure_channel(target, creds, opts) if creds else grpc.aio.insecure_channel(target, opts)
        self.channel = channel
        self._inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self._programs = program_pb2_grpc.ProgramServiceStub(channel)
        self._budgets = budget_pb2_grpc.BudgetServiceStub(channel)
        self._usage = usage_pb2_grpc.UsageServiceStub(channel)
        self._optimizations = optimization_pb2_grpc.OptimizationServiceStub(channel)

    async def close(self) -> None:
        """Close the channel (if the client created it)."""

        if self._owns_channel:
            await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None, metadata: Metadata = None) -> Any:
        try:
            return await method(request, **self._opts(timeout, metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    async def predict(
        self,
        signature_or_program: SignatureLike | Program,
        inputs: Mapping[str, Any] | None = None,
        *,
        module: str = "predict",
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        include_trace: bool = False,
        timeout: float | None = None,
        metadata: Metadata = None,
        **input_kwargs: Any,
    ) -> Prediction:
        """Run an inline module or a stored program once; see :meth:`Client.predict`."""

        request = rq.predict_request(
            signature_or_program, rq.merge_inputs(inputs, input_kwargs), module=module, lm=lm,
            instructions=instructions, demos=demos, adapter=adapter, include_trace=include_trace,
        )
        response = await self._predict(request, timeout, metadata)
        return Prediction(response.prediction, rq.output_types(signature_or_program, module))

    async def render_prompt(
        self,
        signature_or_program: SignatureLike | Program,
        inputs: Mapping[str, Any] | None = None,
        *,
        module: str = "predict",
        predictor: str = "",
        adapter: str | int | None = None,
        timeout: float | None = None,
        **input_kwargs: Any,
    ) -> RenderedPrompt:
        """The messages a predictor would send, without an LM call; see :meth:`Client.render_prompt`."""

        request = rq.render_request(
            signature_or_program, rq.merge_inputs(inputs, input_kwargs), module=module, predictor=predictor,
            adapter=adapter,
        )
        return RenderedPrompt.from_proto(await self._render(request, timeout))

    async def parse_completion(
        self,
        signature_or_program: SignatureLike | Program,
        completion: str,
        *,
        module: str = "predict",
        predictor: str = "",
        adapter: str | int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Parse an LM completion into output values; see :meth:`Client.parse_completion`."""

        request = rq.parse_request(signature_or_program, completion, module=module, predictor=predictor, adapter=adapter)
        response = await self._parse(request, timeout)
        outputs = exact_or(response.outputs_json, response.outputs)
        return typed_outputs(outputs, rq.output_types(signature_or_program, module))

    def program(
        self, name: str, *, lm: rq.LMLike = None, signature: Any = None, tools: Sequence[Any] = (),
        tool_timeout: float | None = None,
    ) -> ProgramModule:
        """A handle that calls the stored program ``name`` like a module: ``await client.program("qa").acall(...)``."""

        from .modules import ProgramModule

        return ProgramModule(name, client=self, lm=lm, signature=signature, tools=tools, tool_timeout=tool_timeout)

    def stream_predict(
        self,
        signature_or_program: SignatureLike | Program,
        inputs: Mapping[str, Any] | None = None,
        *,
        module: str = "predict",
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        include_trace: bool = False,
        timeout: float | None = None,
        metadata: Metadata = None,
        **input_kwargs: Any,
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`predict`, streamed (``async for``); see :meth:`Client.stream_predict`."""

        request = rq.predict_request(
            signature_or_program, rq.merge_inputs(inputs, input_kwargs), module=module, lm=lm,
            instructions=instructions, demos=demos, adapter=adapter, include_trace=include_trace,
        )
        return self._stream(request, timeout, metadata, rq.output_types(signature_or_program, module))

    async def _predict(
        self, request: inference_pb2.PredictRequest, timeout: float | None, metadata: Metadata = None
    ) -> Any:
        return await self._call(self._inference.Predict, request, timeout, metadata)

    def _stream(
        self, request: inference_pb2.PredictRequest, timeout: float | None, metadata: Metadata,
        output_types: Mapping[str, Any] | None,
    ) -> AsyncIterator[StreamEvent]:
        call = self._inference.StreamPredict(_streams.stream_request(request), **self._opts(timeout, metadata))
        return _streams.stream_async(call, output_types)

    async def _batch(
        self, request: inference_pb2.PredictRequest, items: Sequence[Mapping[str, Any]], max_concurrency: int,
        timeout: float | None, metadata: Metadata, output_types: Mapping[str, Any] | None,
    ) -> list[Any]:
        call = self._inference.BatchPredict(
            _streams.batch_request(request, items, max_concurrency), **self._opts(timeout, metadata)
        )
        try:
            return _streams.batch_results([r async for r in call], len(items), output_types)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def _run(
        self, request: inference_pb2.PredictRequest, tools: Mapping[str, Any], tool_timeout: float | None,
        timeout: float | None, metadata: Metadata, output_types: Mapping[str, Any] | None,
    ) -> AsyncIterator[StreamEvent]:
        call = self._inference.Run(**self._opts(timeout, metadata))
        return _streams.run_async(call, _streams.start_message(request, tools, tool_timeout), tools, output_types)

    async def _render(self, request: inference_pb2.RenderPromptRequest, timeout: float | None) -> Any:
        return await self._call(self._inference.RenderPrompt, request, timeout)

    async def _parse(self, request: inference_pb2.ParseCompletionRequest, timeout: float | None) -> Any:
        return await self._call(self._inference.ParseCompletion, request, timeout)

    async def create_program(
        self,
        program_id: str,
        signature: SignatureLike,
        *,
        module: str = "predict",
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        display_name: str = "",
        description: str = "",
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Program:
        """Store a program; see :meth:`Client.create_program`."""

        request = _create_request(
            program_id, signature, module=module, lm=lm, instructions=instructions, demos=demos, adapter=adapter,
            display_name=display_name, description=description, labels=labels,
        )
        return Program.from_proto(await self._call(self._programs.CreateProgram, request, timeout))

    async def get_program(self, name: str, *, timeout: float | None = None) -> Program:
        """A program at its newest revision, or at ``"programs/qa@r0001"``."""

        request = program_pb2.GetProgramRequest(name=rq.program_name(name))
        return Program.from_proto(await self._call(self._programs.GetProgram, request, timeout))

    async def list_programs(self, *, page_size: int = 0, timeout: float | None = None) -> AsyncIterator[Program]:
        """All programs in id order (``async for``; pages are fetched as you iterate)."""

        token = ""
        while True:
            request = program_pb2.ListProgramsRequest(page_size=page_size, page_token=token)
            response = await self._call(self._programs.ListPrograms, request, timeout)
            for program in response.programs:
                yield Program.from_proto(program)
            token = response.next_page_token
            if not token:
                return

    async def list_program_revisions(
        self, name: str, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[Program]:
        """A program at each of its revisions, newest first (``async for``)."""

        token = ""
        while True:
            request = program_pb2.ListProgramRevisionsRequest(
                name=rq.program_name(name), page_size=page_size, page_token=token
            )
            response = await self._call(self._programs.ListProgramRevisions, request, timeout)
            for program in response.programs:
                yield Program.from_proto(program)
            token = response.next_page_token
            if not token:
                return

    async def update_program(
        self,
        name: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        module: str | None = None,
        signature: rq.SignatureLike | None = None,
        lm: rq.LMLike = None,
        instructions: str | None = None,
        demos: Sequence[rq.DemoLike] | None = None,
        adapter: str | int | None = None,
        module_spec: module_pb2.ModuleSpec | None = None,
        etag: str | None = None,
        timeout: float | None = None,
    ) -> Program:
        """Create a new revision with the given parts replaced; see :meth:`Client.update_program`."""

        parts = dict(module=module, signature=signature, lm=lm, instructions=instructions, demos=demos, adapter=adapter)
        current = None
        if module_spec is None and any(v is not None for v in parts.values()):
            current = (await self.get_program(name, timeout=timeout)).raw
        request = _update_request(
            name, current, display_name=display_name, description=description, labels=labels,
            module_spec=module_spec, etag=etag, parts=parts,
        )
        return Program.from_proto(await self._call(self._programs.UpdateProgram, request, timeout))

    async def delete_program(self, name: str, *, etag: str = "", timeout: float | None = None) -> None:
        """Delete a program and all its revisions (``etag``, when given, must match)."""

        request = program_pb2.DeleteProgramRequest(name=rq.program_name(name), etag=etag)
        await self._call(self._programs.DeleteProgram, request, timeout)

    # ------------------------------------------------------------------ budgets (admin scope)

    async def create_budget(self, budget_id: str, *, limit_usd: Decimal | str | int | None = None, limit_micros: int | None = None,
                      program: str = "", api_key_id: str = "", period: str = "day",
                      timeout: float | None = None) -> Budget:
        """Limit what a program (``program="qa"``) or an API key spends per ``period`` ("day",
        "month", "total"). Give the limit exactly: ``limit_usd=Decimal("0.10")`` / ``"0.10"``, or
        ``limit_micros=100_000``."""

        request = bq.create_request(budget_id, limit_usd=limit_usd, limit_micros=limit_micros, program=program,
                                    api_key_id=api_key_id, period=period)
        return Budget.from_proto(await self._call(self._budgets.CreateBudget, request, timeout))

    async def get_budget(self, name: str, *, timeout: float | None = None) -> Budget:
        """A budget with what it spent in its current period (``"team-a"`` or ``"budgets/team-a"``)."""

        request = budget_pb2.GetBudgetRequest(name=bq.budget_name(name))
        return Budget.from_proto(await self._call(self._budgets.GetBudget, request, timeout))

    async def list_budgets(self, *, page_size: int = 0, timeout: float | None = None) -> AsyncIterator[Budget]:
        """Every budget (config and created ones) in id order, with spent and remaining amounts."""

        token = ""
        while True:
            request = budget_pb2.ListBudgetsRequest(page_size=page_size, page_token=token)
            response = await self._call(self._budgets.ListBudgets, request, timeout)
            for budget in response.budgets:
                yield Budget.from_proto(budget)
            token = response.next_page_token
            if not token:
                return

    async def update_budget(self, name: str, *, limit_usd: Decimal | str | int | None = None, limit_micros: int | None = None,
                      period: str | None = None, etag: str = "", timeout: float | None = None) -> Budget:
        """Change a budget's limit and/or period (``etag``, when given, must match)."""

        request = bq.update_request(name, limit_usd=limit_usd, limit_micros=limit_micros, period=period, etag=etag)
        return Budget.from_proto(await self._call(self._budgets.UpdateBudget, request, timeout))

    async def delete_budget(self, name: str, *, etag: str = "", timeout: float | None = None) -> None:
        """Delete a budget (``etag``, when given, must match)."""

        request = budget_pb2.DeleteBudgetRequest(name=bq.budget_name(name), etag=etag)
        await self._call(self._budgets.DeleteBudget, request, timeout)

    async def query_usage(
        self, *, period: str = "total", group_by: Iterable[str] = (), programs: Iterable[str] = (),
        api_key_ids: Iterable[str] = (), models: Iterable[str] = (), start: _dt.date | str | None = None,
        end: _dt.date | str | None = None, page_size: int = 0, timeout: float | None = None,
    ) -> UsageReport:
        """LM calls, tokens and cost from the usage ledger (needs an ``admin`` key).

        ``period`` is ``"total"``, ``"day"`` or ``"month"`` (UTC); ``group_by`` keeps ``"program"``,
        ``"api_key"`` and/or ``"model"`` apart; ``programs`` (``"qa"`` or ``"programs/qa"``; ``""``
        for inline modules), ``api_key_ids`` and ``models`` filter; ``start``/``end`` are inclusive
        days. Every page is fetched."""

        rows, token, total = [], "", None
        while True:
            request = usage_queries.query_request(
                period=period, group_by=group_by, programs=programs, api_key_ids=api_key_ids, models=models,
                start=start, end=end, page_size=page_size, page_token=token)
            response = await self._call(self._usage.QueryUsage, request, timeout)
            rows.extend(UsageRow.from_proto(row) for row in response.rows)
            total, token = UsageRow.from_proto(response.total), response.next_page_token
            if not token:
                return UsageReport(rows, total)

    # ------------------------------------------------------------------ optimization jobs

    async def start_gepa(
        self, program: str, dataset: str, *, reflection_lm: rq.LMLike, metric: MetricLike,
        auto: str | None = None, max_metric_calls: int | None = None, max_full_evals: int | None = None,
        reflection_minibatch_size: int | None = None, candidate_selection_strategy: str | None = None,
        skip_perfect_score: bool | None = None, component_selector: str | None = None, use_merge: bool | None = None,
        max_merge_invocations: int | None = None, failure_score: float | None = None,
        perfect_score: float | None = None, seed: int | None = None, task_lm: rq.LMLike = None, num_threads: int = 0,
        max_errors: int | None = None, activate: bool = False, display_name: str = "", optimization_id: str = "",
        timeout: float | None = None,
    ) -> Optimization:
        """Start a GEPA job on ``program`` ("qa", "programs/qa" or "programs/qa@r0001") with the examples
        of ``dataset``: exactly one of ``auto`` ("light", "medium", "heavy"), ``max_metric_calls`` and
        ``max_full_evals``; ``reflection_lm`` proposes the instructions (a model alias or an ``lm=`` form).
        Unset settings take DSPy 3.4.1's defaults. Returns the queued job (follow it with
        :meth:`watch_optimization`)."""

        settings = oq.gepa_settings(
            reflection_lm=reflection_lm, auto=auto, max_metric_calls=max_metric_calls, max_full_evals=max_full_evals,
            reflection_minibatch_size=reflection_minibatch_size,
            candidate_selection_strategy=candidate_selection_strategy, skip_perfect_score=skip_perfect_score,
            component_selector=component_selector, use_merge=use_merge, max_merge_invocations=max_merge_invocations,
            failure_score=failure_score, perfect_score=perfect_score, seed=seed)
        request = oq.create_request(program, dataset, "gepa", settings, metric=metric, task_lm=task_lm,
                                    num_threads=num_threads, max_errors=max_errors, activate=activate,
                                    display_name=display_name, optimization_id=optimization_id)
        return Optimization.from_proto(await self._call(self._optimizations.CreateOptimization, request, timeout))

    async def start_simba(
        self, program: str, dataset: str, *, metric: MetricLike, bsize: int | None = None,
        num_candidates: int | None = None, max_steps: int | None = None, max_demos: int | None = None,
        demo_input_field_maxlen: int | None = None, temperature_for_sampling: float | None = None,
        temperature_for_candidates: float | None = None, seed: int | None = None, task_lm: rq.LMLike = None,
        num_threads: int = 0, max_errors: int | None = None, activate: bool = False, display_name: str = "",
        optimization_id: str = "", timeout: float | None = None,
    ) -> Optimization:
        """Start a SIMBA job on ``program`` with the examples of ``dataset``; unset settings take DSPy
        3.4.1's defaults (bsize 32, 6 candidates, 8 steps, 4 demos). Returns the queued job."""

        settings = {"bsize": bsize, "num_candidates": num_candidates, "max_steps": max_steps, "max_demos": max_demos,
                    "demo_input_field_maxlen": demo_input_field_maxlen,
                    "temperature_for_sampling": temperature_for_sampling,
                    "temperature_for_candidates": temperature_for_candidates, "seed": seed}
        request = oq.create_request(program, dataset, "simba", settings, metric=metric, task_lm=task_lm,
                                    num_threads=num_threads, max_errors=max_errors, activate=activate,
                                    display_name=display_name, optimization_id=optimization_id)
        return Optimization.from_proto(await self._call(self._optimizations.CreateOptimization, request, timeout))

    async def get_optimization(self, name: str, *, timeout: float | None = None) -> Optimization:
        """An optimization job ("opt-1" or "optimizations/opt-1") as it is now."""

        request = optimization_pb2.GetOptimizationRequest(name=oq.optimization_name(name))
        return Optimization.from_proto(await self._call(self._optimizations.GetOptimization, request, timeout))

    async def cancel_optimization(self, name: str, *, timeout: float | None = None) -> Optimization:
        """Ask a job to stop; it ends "cancelled" (a finished job is returned unchanged)."""

        request = optimization_pb2.CancelOptimizationRequest(name=oq.optimization_name(name))
        return Optimization.from_proto(await self._call(self._optimizations.CancelOptimization, request, timeout))

    async def watch_optimization(self, name: str, *, timeout: float | None = None) -> AsyncIterator[Optimization]:
        """The job now, then after each change, until it finishes (``async for``; the last one is finished)."""

        request = optimization_pb2.WatchOptimizationRequest(name=oq.optimization_name(name))
        options = {**self._opts(timeout), "timeout": timeout}  # no default deadline: a job may run for hours
        call = self._optimizations.WatchOptimization(request, **options)
        try:
            async for message in call:
                job = Optimization.from_proto(message.optimization)
                yield job
                if job.done:
                    return
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        finally:
            call.cancel()

    async def wait_optimization(self, name: str, *, timeout: float | None = None) -> Optimization:
        """The job once it has finished (watched, not polled)."""

        job = None
        async for job in self.watch_optimization(name, timeout=timeout):
            pass
        assert job is not None and job.done
        return job

    async def list_optimization_candidates(
        self, name: str, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[OptimizationCandidate]:
        """The candidates the job evaluated, in order (``async for``)."""

        token = ""
        while True:
            request = optimization_pb2.ListOptimizationCandidatesRequest(
                parent=oq.optimization_name(name), page_size=page_size, page_token=token)
            response = await self._call(self._optimizations.ListOptimizationCandidates, request, timeout)
            for candidate in response.candidates:
                yield OptimizationCandidate.from_proto(candidate)
            token = response.next_page_token
            if not token:
                return
