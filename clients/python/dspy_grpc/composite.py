"""Programs written like a ``dspy.Module``: sub-modules as attributes, a ``forward()`` that wires them.

    import dspy_grpc as dg

    class Hop(dg.Composite):
        def __init__(self, corpus, num_docs=10, num_hops=4):
            super().__init__()
            self.num_docs, self.num_hops = num_docs, num_hops
            self.generate_query = dg.ChainOfThought("claim, notes -> query")
            self.search = dg.Retrieve(corpus=corpus, k=num_docs)
            self.append_notes = dg.ChainOfThought("claim, notes, context -> new_notes: list[str], titles: list[str]")

        def forward(self, claim):
            for hop in self.loop(self.num_hops, notes=[], titles=[]):
                query = self.generate_query(claim=claim, notes=hop.notes).query
                context = self.search(query).scored_passages
                prediction = self.append_notes(claim=claim, notes=hop.notes, context=context)
                hop.notes.extend(prediction.new_notes)
                hop.titles.extend(prediction.titles)
            return dict(notes=hop.notes, titles=dg.dedupe(hop.titles))

    hop = Hop("corpora/wiki", client=client)
    pred = hop(claim="...")                 # runs on the server, as one graph program
    client.create_program("hop", hop.module_spec())

``forward()`` runs once, in this process, when the spec is built: the values it handles are
references to program inputs and step outputs, not data. Calling a sub-module records a graph step
named after its attribute (as DSPy names the predictors: ``generate_query.predict``); ``for hop in
self.loop(n, **variables)`` runs its body once to record a ``loop`` step whose variables
accumulate with ``.extend(...)`` (``.extend_unique(...)``, or ``hop.set(name=...)`` to keep the last
value); :func:`template`, :func:`join`, :func:`concat`, :func:`flatten`, :func:`dedupe`,
:func:`constant` and :func:`obj` record value steps. Python ``if`` on a reference cannot be
recorded: stop a loop early with ``hop.stop_when(prediction.done)``.
"""

from __future__ import annotations

import contextvars
import inspect
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from . import _requests as rq
from .client import AsyncClient, Client
from .modules import Module
from .tools import Tool, to_tool
from .v1 import corpus_pb2, module_pb2

__all__ = ["Composite", "Retrieve", "Ref", "template", "join", "concat", "flatten", "dedupe", "constant", "obj"]

_recorder: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("dspy_grpc_recorder", default=None)


class _Scope:
    """A graph being recorded: the program's, or a loop's body (``parent`` set)."""

    def __init__(self, parent: _Scope | None = None) -> None:
        self.parent = parent
        self.steps: list[module_pb2.GraphStep] = []
        self.names: set[str] = set()
        #: A loop body's inputs read from outside: body input name -> source in the parent scope.
        self.passed: dict[str, str] = {}


class Ref:
    """A value ``forward()`` handles while recording: a program input or a step's output."""

    def __init__(self, scope: _Scope, source: str) -> None:
        self._scope = scope
        self._source = source

    def __repr__(self) -> str:
        return f"Ref({self._source!r})"

    def __bool__(self) -> bool:
        raise TypeError("a recorded value has no truth value while the program is built: use "
                        "loop.stop_when(value) instead of `if value:`")


class _StepOutputs:
    """What calling a sub-module returns while recording: ``.field`` is a reference to an output."""

    def __init__(self, scope: _Scope, step: str) -> None:
        self._scope, self._step = scope, step

    def __getattr__(self, field: str) -> Ref:
        if field.startswith("_"):
            raise AttributeError(field)
        return Ref(self._scope, f"{self._step}.{field}")

    def __getitem__(self, field: str) -> Ref:
        return Ref(self._scope, f"{self._step}.{field}")


class _Variable(Ref):
    """A loop variable: inside the body, its value before the iteration; after the loop, its final value."""

    def __init__(self, frame: _LoopFrame, name: str) -> None:
        super().__init__(frame.body, f"inputs.{name}")
        self._frame, self._name = frame, name

    def _fold(self, value: Any, accumulate: int) -> None:
        if self._frame.closed:
            raise RuntimeError(f"{self._name!r} can only be updated inside its loop")
        self._frame.updates[self._name] = (self._frame.recorder.source(value, self._frame.body), accumulate)

    def extend(self, value: Any) -> None:
        """``items.extend(value)`` each iteration (``append`` when the value is not a list)."""

        self._fold(value, module_pb2.LOOP_ACCUMULATE_APPEND)

    append = extend

    def extend_unique(self, value: Any) -> None:
        """As :meth:`extend`, skipping items the variable already holds."""

        self._fold(value, module_pb2.LOOP_ACCUMULATE_APPEND_UNIQUE)


class _LoopFrame:
    def __init__(self, recorder: _Recorder, name: str, max_iters: int, variables: Mapping[str, Any]) -> None:
        self.recorder, self.name, self.max_iters = recorder, name, max_iters
        self.outer = recorder.scope
        self.body = _Scope(self.outer)
        self.initial = dict(variables)
        self.updates: dict[str, tuple[str, int]] = {}
        self.stop = ""
        self.closed = False
        self.vars = {key: _Variable(self, key) for key in variables}

    def __getattr__(self, name: str) -> Ref:
        if name in self.__dict__.get("vars", {}):
            return self.vars[name]
        raise AttributeError(name)

    def set(self, **values: Any) -> None:
        """``name = value`` each iteration: the variable keeps the last value."""

        for key, value in values.items():
            if key not in self.vars:
                raise KeyError(f"{key!r} is not a variable of this loop")
            self.vars[key]._fold(value, module_pb2.LOOP_ACCUMULATE_LAST)

    def stop_when(self, value: Any) -> None:
        """Stop after an iteration in which ``value`` (a body output) is truthy."""

        self.stop = self.recorder.source(value, self.body)


class _Recorder:
    def __init__(self, lm: rq.LMLike, owner: Composite) -> None:
        self.lm = lm
        self.owner = owner
        self.root = _Scope()
        self.scope = self.root
        self.count = 0
        #: Loops whose body was entered but whose step was not recorded (a `break` out of `self.loop`).
        self.unfinished: list[str] = []

    def fresh(self, prefix: str) -> str:
        while True:
            self.count += 1
            name = f"{prefix}_{self.count}"
            if not self._taken(name):
                return name

    def _taken(self, name: str) -> bool:
        scope: _Scope | None = self.scope
        while scope is not None:
            if name in scope.names:
                return True
            scope = scope.parent
        return False

    def source(self, value: Any, scope: _Scope) -> str:
        """The source string of ``value`` as read from ``scope`` (constants become value steps)."""

        if not isinstance(value, Ref):
            value = constant(value)
        if value._scope is scope:
            return value._source
        if scope.parent is None:
            raise ValueError(f"{value!r} belongs to a loop that has ended; use the loop's variables instead")
        outer = self.source(value, scope.parent)  # pass it in through each enclosing loop
        alias = outer.split(".", 1)[1] if outer.startswith("inputs.") else outer.replace(".", "_")
        scope.passed[alias] = outer
        return f"inputs.{alias}"

    def add(self, name: str, module: module_pb2.ModuleSpec, inputs: Mapping[str, Any]) -> _StepOutputs:
        if self._taken(name):
            raise ValueError(f"step {name!r} is already used in this program: call each sub-module once "
                             "(DSPy would share one predictor between the calls)")
        mapped = {key: self.source(value, self.scope) for key, value in inputs.items()}
        self.scope.steps.append(module_pb2.GraphStep(name=name, module=module, inputs=mapped))
        self.scope.names.add(name)
        return _StepOutputs(self.scope, name)


def _graph(scope: _Scope, outputs: Mapping[str, str]) -> module_pb2.GraphModule:
    return module_pb2.GraphModule(steps=scope.steps, outputs=dict(outputs))


def _value(operation: int, inputs: Mapping[str, Any], **fields: Any) -> Ref:
    recorder = _recorder.get()
    if recorder is None:
        raise RuntimeError("value helpers record steps inside Composite.forward()")
    name = recorder.fresh("value")
    ordered = list(inputs)
    spec = module_pb2.ModuleSpec(value=module_pb2.ValueModule(operation=operation, **fields))
    if operation != module_pb2.VALUE_OPERATION_TEMPLATE:
        spec.value.inputs.extend(ordered)
    return recorder.add(name, spec, inputs).value


def template(text: str, **values: Any) -> Ref:
    """``text.format(**values)`` (an f-string): each ``{name}`` shows ``str()`` of its value."""

    return _value(module_pb2.VALUE_OPERATION_TEMPLATE, values, template=text)


def join(separator: str, items: Any) -> Ref:
    """``separator.join(items)``."""

    return _value(module_pb2.VALUE_OPERATION_JOIN, {"items": items}, separator=separator)


def concat(*lists: Any) -> Ref:
    """The lists one after the other (a non-list adds itself)."""

    return _value(module_pb2.VALUE_OPERATION_CONCAT, {f"part{i}": item for i, item in enumerate(lists)})


def flatten(items: Any) -> Ref:
    """The items of the items, one level."""

    return _value(module_pb2.VALUE_OPERATION_FLATTEN, {"items": items})


def dedupe(items: Any) -> Ref:
    """The items without repeats, first occurrences in order."""

    return _value(module_pb2.VALUE_OPERATION_DEDUPE, {"items": items})


def constant(value: Any) -> Ref:
    """A fixed JSON value."""

    return _value(module_pb2.VALUE_OPERATION_CONSTANT, {}, constant_json=json.dumps(value))


def obj(**values: Any) -> Ref:
    """An object of the given values (to assemble a prediction)."""

    return _value(module_pb2.VALUE_OPERATION_OBJECT, values)


_MODES = {"bm25": corpus_pb2.RETRIEVAL_MODE_BM25, "dense": corpus_pb2.RETRIEVAL_MODE_DENSE,
          "hybrid": corpus_pb2.RETRIEVAL_MODE_HYBRID}


class Retrieve(Module):
    """A retriever: ``search(query)`` gives ``passages`` (texts, best first), ``scored_passages``
    ({text: score}) and ``hits`` ([{id, text, score, metadata}]). Exactly one source:

    * ``corpus="corpora/wiki"``: a stored corpus, searched with BM25;
    * ``colbertv2_url=...``: a ColBERTv2 server the server's configuration allows;
    * ``caller_tool="my_search"``: a search this process runs (give it as ``tools=`` of the call's
      :class:`Composite`, a callable ``(query: str, k: int) -> list``).

    ``k`` defaults to 3 (dspy.Retrieve's); ``mode`` ("bm25", "dense" or "hybrid") says how a corpus
    is searched (dense and hybrid need a corpus with an embedding model)."""

    def __init__(self, *, corpus: str = "", colbertv2_url: str = "", caller_tool: str = "", k: int = 3,
                 mode: str = "bm25", client: Client | AsyncClient | None = None) -> None:
        super().__init__(client=client)
        given = {key: value for key, value in (("corpus", corpus), ("colbertv2_url", colbertv2_url),
                                               ("caller_tool", caller_tool)) if value}
        if len(given) != 1:
            raise ValueError("give exactly one of corpus, colbertv2_url or caller_tool")
        (self.source, self.target), = given.items()
        if self.source == "corpus" and not self.target.startswith("corpora/"):
            self.target = f"corpora/{self.target}"
        self.k = k
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}")
        self.mode = mode

    def module_spec(self, lm: rq.LMLike = None) -> module_pb2.ModuleSpec:
        return module_pb2.ModuleSpec(retrieve=module_pb2.RetrieveModule(
            k=self.k, mode=_MODES[self.mode] if self.mode != "bm25" else 0, **{self.source: self.target}))

    def _target(self, lm: rq.LMLike) -> module_pb2.ModuleSpec:
        return self.module_spec(lm)

    def __call__(self, query: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if query is not None:
            kwargs["query"] = query
        return super().__call__(**kwargs)

    def __repr__(self) -> str:
        return f"Retrieve({self.source}={self.target!r}, k={self.k})"


class Composite(Module):
    """A program written as a ``dspy.Module`` subclass (see the module docs): attributes are the
    sub-modules (:class:`~dspy_grpc.Predict`, :class:`~dspy_grpc.ChainOfThought`,
    :class:`~dspy_grpc.ReAct`, :class:`Retrieve`, other composites), ``forward()`` wires them.
    Call it like any module handle; :meth:`module_spec` gives the graph to store as a program."""

    def __init__(self, *, client: Client | AsyncClient | None = None, lm: rq.LMLike = None,
                 tools: Sequence[Tool | Callable[..., Any]] = (), tool_timeout: float | None = None) -> None:
        super().__init__(client=client, lm=lm)
        #: Functions this process runs for the program: ReAct tools and ``Retrieve(caller_tool=...)``
        #: searches (called with ``query`` and ``k``), matched by name.
        self.tools = [to_tool(t) for t in tools]
        self.tool_timeout = tool_timeout

    def tools_here(self) -> dict[str, Tool]:
        found = {t.name: t for t in self.tools if t.runs_here}
        for value in vars(self).values():
            if isinstance(value, Module) and value is not self:
                found.update(value.tools_here())
        return found

    def forward(self, **inputs: Any) -> Any:
        raise NotImplementedError("define forward() with the program's inputs as parameters")

    def loop(self, max_iters: int, *, name: str = "", **variables: Any) -> Iterator[_LoopFrame]:
        """``for hop in self.loop(n, notes=[], ...)``: records one ``loop`` step. The body runs once
        here; on the server it runs up to ``max_iters`` times. ``variables`` are the initial values."""

        recorder = _recorder.get()
        if recorder is None:
            raise RuntimeError("loop() records a step inside forward() while the program is built")
        frame = _LoopFrame(recorder, name or recorder.fresh("loop"), max_iters, variables)
        recorder.unfinished.append(frame.name)
        recorder.scope = frame.body
        try:
            yield frame
        finally:
            recorder.scope = frame.outer
        frame.closed = True
        recorder.unfinished.remove(frame.name)
        frame.outer.names |= frame.body.names  # a loop's steps are attributes of the module holding it
        missing = [key for key in frame.vars if key not in frame.updates]
        if missing:
            raise ValueError(f"loop variable(s) {missing} are never updated in the loop body")
        body_outputs = {f"{key}_update": source for key, (source, _) in frame.updates.items()}
        if frame.stop:
            body_outputs["stop"] = frame.stop
        loop = module_pb2.LoopModule(body=_graph(frame.body, body_outputs), max_iters=max_iters,
                                     stop_when="stop" if frame.stop else "")
        for key, (_, accumulate) in frame.updates.items():
            loop.variables.add(name=key, update=f"{key}_update", accumulate=accumulate,
                               initial_json=json.dumps(frame.initial[key]))
        passed = {alias: Ref(frame.outer, source) for alias, source in frame.body.passed.items()}
        outputs = recorder.add(frame.name, module_pb2.ModuleSpec(loop=loop), passed)
        for key, variable in frame.vars.items():  # after the loop: its final values
            variable._scope, variable._source = frame.outer, getattr(outputs, key)._source

    def _attribute(self, module: Module) -> str:
        for key, value in vars(self).items():
            if value is module:
                return key
        raise ValueError(f"{module!r} is not an attribute of {type(self).__name__}: assign sub-modules to "
                         "self.<name> in __init__ (the name becomes the step's and its predictors')")

    def module_spec(self, lm: rq.LMLike = None) -> module_pb2.ModuleSpec:
        """The graph ``forward()`` describes (``lm`` becomes every predictor's LM)."""

        recorder = _Recorder(lm if lm is not None else self.lm, self)
        token = _recorder.set(recorder)
        try:
            parameters = [p for p in inspect.signature(self.forward).parameters.values()
                          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            result = self.forward(**{p.name: Ref(recorder.root, f"inputs.{p.name}") for p in parameters})
            if recorder.unfinished:
                raise ValueError(f"the body of loop {recorder.unfinished[0]!r} did not run to its end: do not "
                                 "`break` or `return` inside `for ... in self.loop(...)` (use stop_when)")
            if not isinstance(result, Mapping) or not result:
                raise TypeError("forward() must return a dict of outputs (name -> value), "
                                "e.g. dict(answer=prediction.answer)")
            outputs = {}
            for key, value in result.items():
                source = recorder.source(value, recorder.root)
                if source.startswith("inputs."):
                    raise TypeError(f"output {key!r} is a program input: return step outputs")
                outputs[key] = source
        finally:
            _recorder.reset(token)
        return module_pb2.ModuleSpec(graph=_graph(recorder.root, outputs))

    def _target(self, lm: rq.LMLike) -> module_pb2.ModuleSpec:
        return self.module_spec(lm)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def record_call(module: Module, inputs: Mapping[str, Any]) -> _StepOutputs | None:
    """Record ``module(**inputs)`` as a step when a :class:`Composite` is being built (None otherwise)."""

    recorder = _recorder.get()
    if recorder is None:
        return None
    if not hasattr(module, "module_spec"):
        raise TypeError(f"{type(module).__name__} cannot be a step of a composite program")
    name = recorder.owner._attribute(module)
    return recorder.add(name, module.module_spec(recorder.lm), inputs)  # type: ignore[attr-defined]
