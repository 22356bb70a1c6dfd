"""Telemetry hooks every layer calls: spans, metrics and live events.

Only the OpenTelemetry *API* is used here, which does nothing until the application installs SDK
providers (``app/telemetry.py``). Code anywhere below the API layer records with one line::

    with telemetry.span("dspy.adapter.format", {"dspy.adapter": "chat"}):
        ...
    with telemetry.lm_call(system="openai", model="gpt-4o-mini") as call:
        ...
        call.record_response(model=..., input_tokens=..., output_tokens=..., finish_reasons=...)
    telemetry.record_cache(hit=True, model="gpt-4o-mini")

Attribute names follow the OpenTelemetry GenAI and RPC semantic conventions (``gen_ai.*``,
``rpc.*``, ``http.*``); names of our own are prefixed ``dspy.`` (spans) or ``dspy_grpc.`` (metrics).

Which :class:`Telemetry` a call records into: the one the current RPC runs under (the server's
interceptor sets it with :func:`scope`), else the process default (:func:`set_default`, which the
running application installs), else one bound to the global OpenTelemetry providers.

Prompts and completions (``gen_ai.input.messages`` / ``gen_ai.output.messages``) and exception
messages (which may quote a completion) are recorded only when ``capture_content`` is on; errors
are otherwise recorded by their reason alone.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .errors import DspyGrpcError

log = logging.getLogger("dspy_grpc_server.telemetry")

INSTRUMENTATION_NAME = "dspy_grpc_server"

# GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/)
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
ERROR_TYPE = "error.type"
# Our own
DSPY_CACHE_HIT = "dspy.cache_hit"
DSPY_PROGRAM = "dspy_grpc.program"
DSPY_REQUEST_ID = "dspy_grpc.request_id"
DSPY_API_KEY_ID = "dspy_grpc.api_key.id"
DSPY_JOB = "dspy_grpc.job"
DSPY_JOB_KIND = "dspy_grpc.job.kind"
DSPY_EXAMPLE_INDEX = "dspy_grpc.example.index"
DSPY_EXAMPLE_SCORE = "dspy_grpc.example.score"

#: Latency buckets (seconds) for every duration histogram.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Job states in which a job's progress gauge keeps being reported.
ACTIVE_JOB_STATES = frozenset({"pending", "running"})
#: Breaker states as gauge values.
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
#: Longest recorded prompt/completion attribute (characters) when content capture is on.
CONTENT_LIMIT = 32_000


# ---------------------------------------------------------------- live events (for the dashboard)
# Built on every call, so plain slotted dataclasses: a frozen one costs ~5x as much to construct.
# Sinks must treat them as read-only.

@dataclass(slots=True)
class RpcStarted:
    method: str


@dataclass(slots=True)
class RpcFinished:
    method: str
    code: str
    seconds: float


@dataclass(slots=True)
class LMCallFinished:
    model: str
    system: str
    response_model: str
    input_tokens: int
    output_tokens: int
    seconds: float
    error: str
    cache_hit: bool
    #: The stored program the call was made for ("" for inline modules and raw calls) and the job
    #: that made it ("" outside jobs; else "evaluations/{id}" or "optimizations/{id}").
    program: str = ""
    job: str = ""


@dataclass(slots=True)
class CostRecorded:
    model: str
    usd: float
    program: str = ""
    job: str = ""


@dataclass(slots=True)
class ProgramCallFinished:
    program: str
    seconds: float
    error: str


@dataclass(slots=True)
class CacheLookup:
    model: str
    hit: bool


@dataclass(slots=True)
class BreakerChanged:
    provider: str
    state: str


@dataclass(slots=True)
class JobProgressed:
    job: str
    kind: str
    state: str
    completed: int
    total: int
    score: float | None
    program: str = ""


Event = (RpcStarted | RpcFinished | LMCallFinished | CostRecorded | ProgramCallFinished | CacheLookup | BreakerChanged
         | JobProgressed)
Sink = Callable[[Event], None]


def _is_sdk(provider: object) -> bool:
    """Whether a global provider is an SDK's: the API's own (no-op, or the proxy it hands out
    before one is installed) live in the API package."""

    return not type(provider).__module__.startswith(("opentelemetry.metrics", "opentelemetry.trace"))


def error_type(error: BaseException) -> str:
    """What an error is recorded as: a domain error's reason, else the exception's class name."""

    return error.reason if isinstance(error, DspyGrpcError) else type(error).__name__


class Telemetry:
    """Tracer, metric instruments and event sinks of one application.

    ``tracer_provider``/``meter_provider`` default to the global OpenTelemetry providers (no-ops
    unless someone installed an SDK). ``sinks`` receive an :data:`Event` per finished call.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None, *, capture_content: bool = False) -> None:
        self.capture_content = capture_content
        self.sinks: list[Sink] = []
        self._tracer_provider = tracer_provider
        self._tracer: trace.Tracer | None = None
        self._tracing: bool | None = None
        #: Whether metric instruments go anywhere (a provider was given, or an SDK was installed
        #: globally): when not, the hot paths skip building their attribute sets.
        self.metering = meter_provider is not None or _is_sdk(metrics.get_meter_provider())
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(INSTRUMENTATION_NAME)
        seconds = {"unit": "s", "explicit_bucket_boundaries_advisory": DURATION_BUCKETS}
        self.rpc_duration = meter.create_histogram(
            "rpc.server.call.duration", description="Duration of gRPC calls served", **seconds)
        self.rpc_active = meter.create_up_down_counter(
            "rpc.server.active_requests", unit="{request}", description="gRPC calls in flight")
        self.lm_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", description="Duration of LM requests", **seconds)
        self.lm_tokens = meter.create_counter(
            "dspy_grpc.lm.tokens", unit="{token}", description="Tokens used, by gen_ai.token.type (input/output)")
        self.lm_cost = meter.create_counter("dspy_grpc.lm.cost", unit="USD", description="LM cost in US dollars")
        self.cache_lookups = meter.create_counter(
            "dspy_grpc.lm.cache.lookups", unit="{lookup}", description="LM cache lookups by result (hit/miss)")
        #: Where the breaker gauge reads every deployment's current state at each export:
        #: ``(deployment name, "closed" | "half_open" | "open")`` pairs (set by the application).
        self.breaker_states: Callable[[], Iterable[tuple[str, str]]] = tuple
        #: Progress of jobs by (job, kind): running ones, and finished ones until their last export.
        self._job_progress: dict[tuple[str, str], tuple[float, bool]] = {}
        meter.create_observable_gauge(
            "dspy_grpc.lm.breaker.state", callbacks=[self._observe_breakers],
            description="Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open")
        self.program_duration = meter.create_histogram(
            "dspy_grpc.program.duration", description="Duration of program (module) runs", **seconds)
        meter.create_observable_gauge(
            "dspy_grpc.job.progress", callbacks=[self._observe_jobs], unit="1",
            description="Fraction of a job's work done (0..1)")

    def _observe_breakers(self, _options: metrics.CallbackOptions) -> list[metrics.Observation]:
        try:
            states = list(self.breaker_states())
        except Exception:  # noqa: BLE001 - an export must not fail on a status read
            log.exception("reading the breaker states failed")
            return []
        return [metrics.Observation(BREAKER_STATES.get(state, -1), {"dspy_grpc.provider": name})
                for name, state in states]

    def set_job_progress(self, job: str, kind: str, fraction: float, *, finished: bool) -> None:
        if finished and not self.metering:  # nothing will read it: keep nothing
            self._job_progress.pop((job, kind), None)
            return
        self._job_progress[(job, kind)] = (fraction, finished)

    def _observe_jobs(self, _options: metrics.CallbackOptions) -> list[metrics.Observation]:
        observed = [metrics.Observation(fraction, {DSPY_JOB: job, DSPY_JOB_KIND: kind})
                    for (job, kind), (fraction, _) in list(self._job_progress.items())]
        for key, (_, finished) in list(self._job_progress.items()):
            if finished:  # reported once more at its final value, then no longer
                del self._job_progress[key]
        return observed

    @property
    def tracer(self) -> trace.Tracer:
        if self._tracer is None:
            provider = self._tracer_provider or trace.get_tracer_provider()
            self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        return self._tracer

    @property
    def tracing(self) -> bool:
        """Whether spans go anywhere: a provider was given, or an SDK was installed globally before
        the first span. When not, :func:`span` skips the OpenTelemetry API altogether (its no-op
        spans would carry the current span context unchanged anyway)."""

        if self._tracing is None:
            self._tracing = self._tracer_provider is not None or not isinstance(
                trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
        return self._tracing

    def set_tracer_provider(self, provider: trace.TracerProvider) -> None:
        """Record spans into ``provider`` from now on."""

        self._tracer_provider, self._tracer, self._tracing = provider, None, None

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # noqa: BLE001 - a broken sink must never fail a request
                log.exception("telemetry sink failed on %s", type(event).__name__)


_default = Telemetry()
_current: contextvars.ContextVar[Telemetry | None] = contextvars.ContextVar("dspy_grpc_telemetry", default=None)
#: The stored program and the job the running code works for (set by program_call and job_run).
_program: contextvars.ContextVar[str] = contextvars.ContextVar("dspy_grpc_telemetry_program", default="")
_job: contextvars.ContextVar[str] = contextvars.ContextVar("dspy_grpc_telemetry_job", default="")


class _WorkingFor:
    """Sets the program/job the code inside works for (unset parts keep their value)."""

    __slots__ = ("_program", "_job", "_tokens")

    def __init__(self, program: str | None = None, job: str | None = None) -> None:
        self._program, self._job = program, job

    def __enter__(self) -> None:
        self._tokens = (None if self._program is None else _program.set(self._program),
                        None if self._job is None else _job.set(self._job))

    def __exit__(self, *exc_info: object) -> None:
        program_token, job_token = self._tokens
        if job_token is not None:
            _job.reset(job_token)
        if program_token is not None:
            _program.reset(program_token)



def current() -> Telemetry:
    """The telemetry the running code records into."""

    return _current.get() or _default


def set_default(telemetry: Telemetry | None) -> None:
    """Make ``telemetry`` the process default (``None``: back to the global providers)."""

    global _default
    _default = telemetry or Telemetry()


def is_default(telemetry: Telemetry) -> bool:
    return _default is telemetry


# The context managers of this module run several times on every call, so they are classes with
# slots rather than generator-based (@contextmanager costs ~1.3 us a use, these ~0.3), and do no
# span or metric work when nothing records (see ``Telemetry.tracing`` and ``Telemetry.metering``).

class scope:  # noqa: N801 - used like the function it replaces: ``with scope(telemetry):``
    """Record into ``telemetry`` inside this block (and in tasks started from it)."""

    __slots__ = ("_telemetry", "_token")

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def __enter__(self) -> Telemetry:
        self._token = _current.set(self._telemetry)
        return self._telemetry

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


# ---------------------------------------------------------------- spans

def _fail(span: Span, error: BaseException, telemetry: Telemetry) -> None:
    kind = error_type(error)
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, kind))
    if telemetry.capture_content:
        span.record_exception(error)


class _NoSpan:
    """What :func:`span` gives when nothing records: the invalid span, no context lookup."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SPAN = _NoSpan()


def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL,
         context: Any = None) -> AbstractContextManager[Span]:
    """A span around the block; an exception marks it failed (``error.type`` = its reason)."""

    telemetry = current()
    if not telemetry.tracing:
        return _NO_SPAN
    return _recorded_span(telemetry, name, attributes, kind, context)


@contextmanager
def _recorded_span(telemetry: Telemetry, name: str, attributes: Mapping[str, Any] | None, kind: SpanKind,
                   context: Any) -> Iterator[Span]:
    with telemetry.tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=_clean(attributes),
        record_exception=False, set_status_on_exception=False,
    ) as current_span:
        try:
            yield current_span
        except BaseException as error:
            _fail(current_span, error, telemetry)
            raise


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not attributes:
        return None
    return {key: value for key, value in attributes.items() if value is not None and value != ""}


class LMCall:
    """What :func:`lm_call` records; fill it in as the request progresses."""

    def __init__(self, span_: Span, telemetry: Telemetry, model: str) -> None:
        self.span, self._telemetry = span_, telemetry
        self._recording = span_ is not trace.INVALID_SPAN
        self.response_model = model
        self.input_tokens = self.output_tokens = 0
        self.cache_hit = False

    def record_prompt(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """The request's messages (only when content capture is on)."""

        if self._recording and self._telemetry.capture_content and self.span.is_recording():
            self.span.set_attribute(GEN_AI_INPUT_MESSAGES, _json(list(messages)))

    def record_response(self, *, model: str = "", input_tokens: int = 0, output_tokens: int = 0,
                        finish_reasons: Sequence[str] = (), response_id: str = "", cache_hit: bool = False,
                        texts: Sequence[str] = ()) -> None:
        """The provider's answer: response model, token usage, finish reasons (and texts, if captured)."""

        self.response_model = model or self.response_model
        self.input_tokens, self.output_tokens, self.cache_hit = input_tokens, output_tokens, cache_hit
        if not self._recording:
            return
        self.span.set_attributes(_clean({
            GEN_AI_RESPONSE_MODEL: model, GEN_AI_RESPONSE_ID: response_id,
            GEN_AI_USAGE_INPUT_TOKENS: input_tokens, GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            GEN_AI_RESPONSE_FINISH_REASONS: tuple(finish_reasons) or None, DSPY_CACHE_HIT: cache_hit,
        }) or {})
        if texts and self._telemetry.capture_content and self.span.is_recording():
            outputs = [{"role": "assistant", "content": text} for text in texts]
            self.span.set_attribute(GEN_AI_OUTPUT_MESSAGES, _json(outputs))


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= CONTENT_LIMIT else text[:CONTENT_LIMIT] + "…"


class lm_call:  # noqa: N801 - used like a function: ``with lm_call(...) as call:``
    """A GenAI client span (``"chat {model}"``) plus LM latency/token metrics and an event.

    ``system`` is the provider (``openai``, ``dummy``, ...), ``model`` the model requested.
    """

    __slots__ = ("_telemetry", "_system", "_model", "_operation", "_temperature", "_max_tokens", "_span",
                 "_call", "_started")

    def __init__(self, *, system: str, model: str, operation: str = "chat", temperature: float | None = None,
                 max_tokens: int | None = None) -> None:
        self._telemetry = current()
        self._system, self._model, self._operation = system, model, operation
        self._temperature, self._max_tokens = temperature, max_tokens

    def _base(self) -> dict[str, Any]:
        return {GEN_AI_OPERATION_NAME: self._operation, GEN_AI_SYSTEM: self._system,
                GEN_AI_REQUEST_MODEL: self._model}

    def __enter__(self) -> LMCall:
        if self._telemetry.tracing:
            attributes = {**self._base(), GEN_AI_REQUEST_TEMPERATURE: self._temperature,
                          GEN_AI_REQUEST_MAX_TOKENS: self._max_tokens}
            self._span = span(f"{self._operation} {self._model}", attributes, kind=SpanKind.CLIENT)
        else:
            self._span = _NO_SPAN
        self._call = LMCall(self._span.__enter__(), self._telemetry, self._model)
        self._started = time.perf_counter()
        return self._call

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool | None:
        seconds = time.perf_counter() - self._started
        error = error_type(exc) if exc is not None else ""
        try:
            return self._span.__exit__(exc_type, exc, tb)
        finally:
            telemetry, call = self._telemetry, self._call
            if telemetry.metering:
                base = self._base()
                telemetry.lm_duration.record(seconds, {**base, ERROR_TYPE: error} if error else base)
                if call.input_tokens:
                    telemetry.lm_tokens.add(call.input_tokens, {**base, GEN_AI_TOKEN_TYPE: "input"})
                if call.output_tokens:
                    telemetry.lm_tokens.add(call.output_tokens, {**base, GEN_AI_TOKEN_TYPE: "output"})
            telemetry.emit(LMCallFinished(self._model, self._system, call.response_model, call.input_tokens,
                                          call.output_tokens, seconds, error, call.cache_hit,
                                          _program.get(), _job.get()))


class HttpCall:
    def __init__(self, span_: Span) -> None:
        self.span = span_

    def record_status(self, status_code: int) -> None:
        self.span.set_attribute("http.response.status_code", status_code)
        if status_code >= 400:
            self.span.set_attribute(ERROR_TYPE, str(status_code))
            self.span.set_status(Status(StatusCode.ERROR, str(status_code)))


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (which may carry credentials)."""

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _NoHttpCall:
    """What :func:`http_call` gives when nothing records."""

    __slots__ = ()
    _call = HttpCall(trace.INVALID_SPAN)

    def __enter__(self) -> HttpCall:
        return self._call

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_HTTP_CALL = _NoHttpCall()


def http_call(method: str, url: str) -> AbstractContextManager[HttpCall]:
    """A client span for one HTTP request (one per attempt); headers are never recorded."""

    if not current().tracing:
        return _NO_HTTP_CALL
    return _recorded_http_call(method, url)


@contextmanager
def _recorded_http_call(method: str, url: str) -> Iterator[HttpCall]:
    parts = urlsplit(url)
    attributes = {"http.request.method": method, "url.full": safe_url(url), "server.address": parts.hostname,
                  "server.port": parts.port or (443 if parts.scheme == "https" else 80)}
    with span(method, attributes, kind=SpanKind.CLIENT) as current_span:
        yield HttpCall(current_span)


# ---------------------------------------------------------------- RPCs and programs

class RpcCall:
    def __init__(self, span_: Span) -> None:
        self.span = span_
        self.code = "OK"
        self.code_value = 0
        if span_ is not trace.INVALID_SPAN:
            span_.set_attribute("rpc.grpc.status_code", 0)

    def record_code(self, name: str, value: int, reason: str = "") -> None:
        """The call's status code; a failure's ``error.type`` is its ``reason`` (the ErrorInfo
        reason sent to the caller), else the code's name."""

        self.code, self.code_value = name, value
        self.span.set_attribute("rpc.grpc.status_code", value)
        if name != "OK":
            self.span.set_attribute(ERROR_TYPE, reason or name)
            self.span.set_status(Status(StatusCode.ERROR, reason or name))


#: ``rpc.*`` attributes by method name (the server's methods: a few dozen).
_rpc_attributes: dict[str, dict[str, str]] = {}


def _rpc_base(method: str) -> dict[str, str]:
    base = _rpc_attributes.get(method)
    if base is None:
        service, _, name = method.lstrip("/").partition("/")
        base = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        if len(_rpc_attributes) < 1000:
            _rpc_attributes[method] = base
    return base


class rpc_call:  # noqa: N801 - used like a function: ``with rpc_call(method) as rpc:``
    """A server span for one gRPC call (``method`` is ``/package.Service/Method``), with the call
    duration histogram, the in-flight gauge and an event. ``parent`` is the extracted caller context."""

    __slots__ = ("_telemetry", "_method", "_parent", "_span", "_call", "_started")

    def __init__(self, method: str, *, parent: Any = None) -> None:
        self._telemetry = current()
        self._method, self._parent = method, parent

    def __enter__(self) -> RpcCall:
        telemetry, method = self._telemetry, self._method
        if telemetry.metering:
            telemetry.rpc_active.add(1, _rpc_base(method))
        telemetry.emit(RpcStarted(method))
        self._started = time.perf_counter()
        self._call = None
        if telemetry.tracing:
            base = _rpc_base(method)
            self._span = span(f"{base['rpc.service']}/{base['rpc.method']}", base, kind=SpanKind.SERVER,
                              context=self._parent)
        else:
            self._span = _NO_SPAN
        try:
            self._call = RpcCall(self._span.__enter__())
        except BaseException:
            self._finish()
            raise
        return self._call

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool | None:
        try:
            return self._span.__exit__(exc_type, exc, tb)
        finally:
            self._finish()

    def _finish(self) -> None:
        telemetry, call = self._telemetry, self._call
        seconds = time.perf_counter() - self._started
        if telemetry.metering:
            base = _rpc_base(self._method)
            telemetry.rpc_active.add(-1, base)
            telemetry.rpc_duration.record(seconds, {**base, "rpc.grpc.status_code": call.code_value if call else 2})
        telemetry.emit(RpcFinished(self._method, call.code if call else "UNKNOWN", seconds))


class program_call:  # noqa: N801 - used like a function: ``with program_call(program_id, kind):``
    """A span around one run of a program (``program`` is its id, or ``"inline"``), with the program
    duration histogram (``error.type`` on failures) and an event for per-program stats."""

    __slots__ = ("_telemetry", "_program", "_kind", "_span", "_working", "_started")

    def __init__(self, program: str, module_kind: str = "") -> None:
        self._telemetry = current()
        self._program, self._kind = program, module_kind

    def __enter__(self) -> Span:
        program = self._program
        self._started = time.perf_counter()
        self._span = (span(f"dspy.program {program}", {DSPY_PROGRAM: program, "dspy.module": self._kind})
                      if self._telemetry.tracing else _NO_SPAN)
        current_span = self._span.__enter__()
        self._working = _WorkingFor(program="" if program == "inline" else program)
        self._working.__enter__()
        return current_span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool | None:
        self._working.__exit__()
        try:
            return self._span.__exit__(exc_type, exc, tb)
        finally:
            telemetry = self._telemetry
            seconds = time.perf_counter() - self._started
            error = error_type(exc) if exc is not None else ""
            if telemetry.metering:
                attributes = {DSPY_PROGRAM: self._program, **({ERROR_TYPE: error} if error else {})}
                telemetry.program_duration.record(seconds, attributes)
            telemetry.emit(ProgramCallFinished(self._program, seconds, error))


@contextmanager
def tool_call(tool: str, call_id: str) -> Iterator[Span]:
    """An ``execute_tool {tool}`` span around one tool call of an agent (GenAI conventions).
    Arguments and results are content: they are never recorded."""

    attributes = {GEN_AI_OPERATION_NAME: "execute_tool", GEN_AI_TOOL_NAME: tool, GEN_AI_TOOL_CALL_ID: call_id}
    with span(f"execute_tool {tool}", attributes) as current_span:
        yield current_span


@contextmanager
def job_run(kind: str, job_id: str, program: str = "") -> Iterator[Span]:
    """A span around one run of a long-running job (a resumed job gets a new one) for ``program``
    (its id); what the job does (program runs, LM calls) nests under it and is counted as job
    traffic of that program in live events."""

    with span(f"dspy.job {kind}", {DSPY_JOB: job_id, DSPY_JOB_KIND: kind, DSPY_PROGRAM: program}) as current_span, \
            _WorkingFor(program=program, job=f"{kind}s/{job_id}"):
        yield current_span


@contextmanager
def evaluation_example(index: int) -> Iterator[Span]:
    """A span around running and scoring one example of an evaluation (the job's, or an optimizer's
    candidate evaluation); record the score with :func:`record_score`."""

    with span("dspy.evaluate.example", {DSPY_EXAMPLE_INDEX: index}) as current_span:
        yield current_span


def record_score(span_: Span, score: float) -> None:
    span_.set_attribute(DSPY_EXAMPLE_SCORE, score)


def mark_failed(span_: Span, reason: str) -> None:
    """Mark ``span_`` failed with ``reason`` as its ``error.type`` (for failures that are not raised)."""

    span_.set_attribute(ERROR_TYPE, reason)
    span_.set_status(Status(StatusCode.ERROR, reason))


# ---------------------------------------------------------------- one-line recorders

def record_cache(*, hit: bool, model: str = "") -> None:
    """One LM cache lookup."""

    telemetry = current()
    telemetry.cache_lookups.add(1, {"dspy_grpc.cache.result": "hit" if hit else "miss", GEN_AI_REQUEST_MODEL: model})
    telemetry.emit(CacheLookup(model, hit))


def record_cost(model: str, usd: float) -> None:
    """Money spent on one LM request."""

    if usd <= 0:
        return
    telemetry = current()
    telemetry.lm_cost.add(usd, {GEN_AI_REQUEST_MODEL: model})
    telemetry.emit(CostRecorded(model, usd, _program.get(), _job.get()))


def record_breaker_state(provider: str, state: str) -> None:
    """A provider's circuit breaker changed state (``closed``, ``half_open`` or ``open``): an event
    for live views. The gauge reads every deployment's state at each export (``breaker_states``)."""

    current().emit(BreakerChanged(provider, state))


def record_job_progress(job: str, *, kind: str, state: str, completed: int, total: int,
                        score: float | None = None, program: str = "") -> None:
    """Progress of a long-running job (evaluation, optimization): ``completed`` of ``total`` steps."""

    telemetry = current()
    # Planned work is an estimate: a job that succeeded is done.
    fraction = 1.0 if state == "succeeded" else completed / total if total > 0 else 0.0
    telemetry.set_job_progress(job, kind, fraction, finished=state not in ACTIVE_JOB_STATES)
    telemetry.emit(JobProgressed(job, kind, state, completed, total, score, program))
