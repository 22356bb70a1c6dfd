"""Request builders shared by :class:`~dspy_grpc.Client` and :class:`~dspy_grpc.AsyncClient` (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

from google.protobuf import field_mask_pb2

from .v1 import inference_pb2, module_pb2, program_pb2, signature_pb2
from .signatures import SignatureMeta
from .values import to_json

#: What ``lm=`` accepts: a model alias, a dict (scripted dummy LM or alias + options), or a proto.
LMLike = Union[str, Mapping[str, Any], module_pb2.LMSpec, None]
#: What ``demos=`` accepts: dicts of field values, or ``dspy_grpc.v1.Example`` protos.
DemoLike = Union[Mapping[str, Any], signature_pb2.Example]
#: What ``signature=`` accepts: a DSPy string signature, a ``Signature`` subclass, or a proto.
SignatureLike = Union[str, SignatureMeta, signature_pb2.Signature]

PROGRAM_PREFIX = "programs/"

_MODULE_KINDS = {
    "predict": "predict",
    "chain_of_thought": "chain_of_thought",
    "chainofthought": "chain_of_thought",
    "cot": "chain_of_thought",
}
_ADAPTERS = {
    "chat": module_pb2.ADAPTER_KIND_CHAT,
    "json": module_pb2.ADAPTER_KIND_JSON,
    "xml": module_pb2.ADAPTER_KIND_XML,
    "two_step": module_pb2.ADAPTER_KIND_TWO_STEP,
    "twostep": module_pb2.ADAPTER_KIND_TWO_STEP,
}
_LM_OPTION_KEYS = ("temperature", "max_tokens", "top_p", "stop", "seed")


def module_kind(module: str) -> str:
    """Normalise ``"predict"`` / ``"chain_of_thought"`` (also ``"ChainOfThought"``, ``"cot"``)."""

    key = module.strip().lower().replace("-", "_")
    kind = _MODULE_KINDS.get(key) or _MODULE_KINDS.get(key.replace("_", ""))
    if kind is None:
        raise ValueError(f"unknown module {module!r}; use 'predict' or 'chain_of_thought'")
    return kind


def adapter_kind(adapter: str | int | None) -> int:
    """``"chat"`` / ``"json"`` / ``"xml"`` / ``"two_step"`` (or an ``AdapterKind`` value) to the enum value."""

    if adapter is None:
        return module_pb2.ADAPTER_KIND_UNSPECIFIED
    if isinstance(adapter, int):
        return adapter
    try:
        return _ADAPTERS[adapter.strip().lower().removesuffix("adapter")]
    except KeyError:
        raise ValueError(f"unknown adapter {adapter!r}; use 'chat', 'json', 'xml' or 'two_step'") from None


def _dummy_response(reply: Any) -> module_pb2.DummyResponse:
    if isinstance(reply, module_pb2.DummyResponse):
        return reply
    if isinstance(reply, str):
        return module_pb2.DummyResponse(text=reply)
    if isinstance(reply, Mapping):
        return module_pb2.DummyResponse(fields_json=to_json(reply))
    raise TypeError(f"a dummy LM response must be a str (raw completion) or a dict of fields, not {type(reply).__name__}")


def _lm_options(options: Mapping[str, Any]) -> module_pb2.LMOptions:
    unknown = set(options) - set(_LM_OPTION_KEYS)
    if unknown:
        raise ValueError(f"unknown LM option(s) {sorted(unknown)}; known: {', '.join(_LM_OPTION_KEYS)}")
    result = module_pb2.LMOptions()
    for key, value in options.items():
        if value is None:
            continue
        if key == "stop":
            result.stop.extend([value] if isinstance(value, str) else value)
        else:
            setattr(result, key, value)
    return result


def lm_spec(lm: LMLike) -> module_pb2.LMSpec | None:
    """Build an ``LMSpec``.

    - ``"gpt-4o-mini"``: a model alias from the server's configuration (``"dummy"`` is built in);
    - ``{"responses": [{"answer": "Paris"}, "raw text"], "rules": [...], "auto": True}``: a scripted
      dummy LM — dict replies are output fields, strings are raw completions; rules are
      ``{"contains": "...", "response": {...} | "..."}``;
    - ``{"model": "gpt-4o-mini", "temperature": 0, "max_tokens": 100}``: an alias with options.
    Any dict may also carry ``"options": {...}``.
    """

    if lm is None:
        return None
    if isinstance(lm, module_pb2.LMSpec):
        return lm
    if isinstance(lm, str):
        return module_pb2.LMSpec(model=lm)
    if not isinstance(lm, Mapping):
        raise TypeError(f"lm must be a model alias, a dict or an LMSpec, not {type(lm).__name__}")
    data = dict(lm)
    options = dict(data.pop("options", None) or {})
    options.update({key: data.pop(key) for key in _LM_OPTION_KEYS if key in data})
    spec = module_pb2.LMSpec()
    if "model" in data:
        spec.model = data.pop("model")
    if {"responses", "rules", "auto"} & set(data):
        if spec.HasField("model"):
            raise ValueError("lm: give either 'model' or a dummy script ('responses' / 'rules' / 'auto'), not both")
        dummy = spec.dummy
        dummy.SetInParent()
        for reply in data.pop("responses", None) or ():
            dummy.responses.append(_dummy_response(reply))
        for rule in data.pop("rules", None) or ():
            dummy.rules.append(module_pb2.DummyRule(contains=rule["contains"], response=_dummy_response(rule["response"])))
        dummy.auto = bool(data.pop("auto", False))
    if data:
        raise ValueError(f"unknown lm key(s) {sorted(data)}")
    if options:
        spec.options.CopyFrom(_lm_options(options))
    return spec


def example(demo: DemoLike) -> signature_pb2.Example:
    """A demo: a dict of field values (or an ``Example`` proto, passed through)."""

    if isinstance(demo, signature_pb2.Example):
        return demo
    if isinstance(demo, Mapping):
        return signature_pb2.Example(data_json=to_json(demo))
    raise TypeError(f"a demo must be a dict of field values or an Example, not {type(demo).__name__}")


def signature(sig: SignatureLike, instructions: str | None) -> signature_pb2.Signature:
    """A ``Signature`` from DSPy's string form (parsed by the server), a :class:`~dspy_grpc.Signature`
    subclass or a proto, with instructions."""

    result = signature_pb2.Signature()
    if isinstance(sig, signature_pb2.Signature):
        result.CopyFrom(sig)
    elif isinstance(sig, str):
        result.text = sig
    elif isinstance(sig, SignatureMeta):
        result.CopyFrom(sig.to_proto())
    else:
        raise TypeError(
            "signature must be a string like 'question -> answer', a dspy_grpc.Signature subclass or a "
            f"Signature proto, not {type(sig).__name__}"
        )
    if instructions is not None:
        result.instructions = instructions
    return result


def predictor_spec(
    sig: SignatureLike,
    *,
    lm: LMLike = None,
    instructions: str | None = None,
    demos: Sequence[DemoLike] | None = None,
    adapter: str | int | None = None,
    extraction_lm: LMLike = None,
) -> module_pb2.PredictorSpec:
    """One ``PredictorSpec``: a signature with its demos, adapter and LMs."""

    predictor = module_pb2.PredictorSpec(
        signature=signature(sig, instructions),
        demos=[example(d) for d in demos or ()],
        adapter=adapter_kind(adapter),
    )
    spec = lm_spec(lm)
    if spec is not None:
        predictor.lm.CopyFrom(spec)
    extraction = lm_spec(extraction_lm)
    if extraction is not None:
        predictor.extraction_lm.CopyFrom(extraction)
    return predictor


def module_spec(
    sig: SignatureLike,
    *,
    module: str = "predict",
    lm: LMLike = None,
    instructions: str | None = None,
    demos: Sequence[DemoLike] | None = None,
    adapter: str | int | None = None,
) -> module_pb2.ModuleSpec:
    """An inline ``ModuleSpec`` (``dspy.Predict`` or ``dspy.ChainOfThought`` over ``sig``)."""

    predictor = predictor_spec(sig, lm=lm, instructions=instructions, demos=demos, adapter=adapter)
    return wrap(predictor, module_kind(module))


def wrap(predictor: module_pb2.PredictorSpec, kind: str) -> module_pb2.ModuleSpec:
    """A one-predictor ``ModuleSpec`` of ``kind`` (``"predict"`` / ``"chain_of_thought"``)."""

    if kind == "chain_of_thought":
        return module_pb2.ModuleSpec(chain_of_thought=module_pb2.ChainOfThoughtModule(predictor=predictor))
    return module_pb2.ModuleSpec(predict=module_pb2.PredictModule(predictor=predictor))


def modify_module(
    current: module_pb2.ModuleSpec,
    *,
    signature_: SignatureLike | None = None,
    module: str | None = None,
    lm: LMLike = None,
    instructions: str | None = None,
    demos: Sequence[DemoLike] | None = None,
    adapter: str | int | None = None,
) -> module_pb2.ModuleSpec:
    """A copy of ``current`` with the given parts replaced (``None`` keeps a part as it is)."""

    kind = current.WhichOneof("module")
    if kind is None:
        raise ValueError("the stored program has no module to modify; pass module_spec= instead")
    predictor = module_pb2.PredictorSpec()
    predictor.CopyFrom(getattr(current, kind).predictor)
    if signature_ is not None:
        keep = predictor.signature.instructions if predictor.signature.HasField("instructions") else None
        predictor.signature.CopyFrom(signature(signature_, keep))
    if instructions is not None:
        predictor.signature.instructions = instructions
    if demos is not None:
        del predictor.demos[:]
        predictor.demos.extend(example(d) for d in demos)
    if adapter is not None:
        predictor.adapter = adapter_kind(adapter)
    if lm is not None:
        spec = lm_spec(lm)
        predictor.ClearField("lm")
        if spec is not None:
            predictor.lm.CopyFrom(spec)
    return wrap(predictor, module_kind(module) if module is not None else kind)


def set_target(
    request: Any,
    target: Any,
    *,
    module: str = "predict",
    instructions: str | None = None,
    demos: Sequence[DemoLike] | None = None,
    adapter: str | int | None = None,
) -> None:
    """Set the ``program`` / ``module`` oneof of a Predict, RenderPrompt or ParseCompletion request.

    ``target`` is a stored program name (``"programs/qa"``, ``"programs/qa@r0002"``), a
    :class:`~dspy_grpc.Program`, a ``ModuleSpec``, or a signature (string, ``Signature`` subclass or
    proto) run inline as ``module`` with ``instructions``, ``demos`` and ``adapter``.
    """

    name = getattr(target, "revision_name", None)  # a Program
    if isinstance(name, str):
        target = name
    if isinstance(target, module_pb2.ModuleSpec):
        request.module.CopyFrom(target)
    elif isinstance(target, str) and target.startswith(PROGRAM_PREFIX):
        if instructions is not None or demos is not None or adapter is not None or module_kind(module) != "predict":
            raise ValueError("module, instructions, demos and adapter apply to inline signatures, not stored programs")
        request.program = target
    else:
        request.module.CopyFrom(
            module_spec(target, module=module, instructions=instructions, demos=demos, adapter=adapter)
        )


def merge_inputs(inputs: Mapping[str, Any] | None, input_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs`` plus keyword inputs (a name given both ways is an error)."""

    merged = dict(inputs or {})
    overlap = set(merged) & set(input_kwargs)
    if overlap:
        raise ValueError(f"input(s) {sorted(overlap)} given both in inputs and as keyword arguments")
    merged.update(input_kwargs)
    return merged


def predict_request(
    target: Any,
    inputs: Mapping[str, Any],
    *,
    module: str = "predict",
    lm: LMLike = None,
    instructions: str | None = None,
    demos: Sequence[DemoLike] | None = None,
    adapter: str | int | None = None,
    include_trace: bool = False,
) -> inference_pb2.PredictRequest:
    """The ``PredictRequest`` running ``target`` (see :func:`set_target`) on ``inputs``."""

    request = inference_pb2.PredictRequest(inputs_json=to_json(inputs), include_trace=include_trace)
    spec = lm_spec(lm)
    if spec is not None:
        request.lm.CopyFrom(spec)
    set_target(request, target, module=module, instructions=instructions, demos=demos, adapter=adapter)
    return request


def render_request(
    target: Any, inputs: Mapping[str, Any], *, module: str = "predict", predictor: str = "",
    adapter: str | int | None = None,
) -> inference_pb2.RenderPromptRequest:
    """The ``RenderPromptRequest``; ``adapter`` overrides the predictor's own."""

    request = inference_pb2.RenderPromptRequest(
        inputs_json=to_json(inputs), predictor=predictor, adapter=adapter_kind(adapter)
    )
    set_target(request, target, module=module)
    return request


def parse_request(
    target: Any, completion: str, *, module: str = "predict", predictor: str = "", adapter: str | int | None = None,
) -> inference_pb2.ParseCompletionRequest:
    """The ``ParseCompletionRequest``; ``adapter`` overrides the predictor's own."""

    request = inference_pb2.ParseCompletionRequest(
        completion=completion, predictor=predictor, adapter=adapter_kind(adapter)
    )
    set_target(request, target, module=module)
    return request


def output_types(target: Any, module: str = "predict") -> dict[str, Any] | None:
    """The declared Python types of the outputs, when ``target`` is a ``Signature`` subclass."""

    if not isinstance(target, SignatureMeta):
        return None
    types = target.output_types()
    return {"reasoning": str, **types} if module_kind(module) == "chain_of_thought" else types


def program_proto(
    *,
    module: module_pb2.ModuleSpec,
    display_name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
    name: str = "",
    etag: str = "",
) -> program_pb2.Program:
    return program_pb2.Program(
        name=name, display_name=display_name, description=description, labels=dict(labels or {}),
        module=module, etag=etag,
    )


def program_name(name_or_id: str) -> str:
    """``"qa"`` or ``"programs/qa"`` to ``"programs/qa"``."""

    return name_or_id if name_or_id.startswith(PROGRAM_PREFIX) else PROGRAM_PREFIX + name_or_id


def field_mask(paths: Sequence[str]) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))
