"""Translation between the wire messages (dspy_grpc.v1) and the domain types.

Requests are checked here for what only the wire form can get wrong (unset oneofs, malformed
resource names, both string and structured signatures); everything else is validated by the domain,
whose errors name fields with the same dotted paths the request uses.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from typing import Any

from dspy_grpc.v1 import corpus_pb2, inference_pb2, metric_pb2, module_pb2, prediction_pb2, program_pb2, signature_pb2
from google.protobuf import struct_pb2, timestamp_pb2

from ..app.inference import ProgramRef
from ..app.programs import Program
from ..core.errors import invalid
from ..core.example import Example
from ..core.signature import CONSTRAINT_LABELS, Field, Role, Signature, parse_signature
from ..core.types import TypeKind, TypeSpec
from ..lm.dummy import DummyResponse, DummyRule, DummySpec
from ..lm.types import LMOptions
from ..modules.prediction import Prediction
from ..modules.predictor import RenderedPrompt
from ..modules.metrics import (
    FieldMetric,
    LMJudgeMetric,
    Metric,
    WeightedMetric,
    first_score_output,
    semantic_f1,
)
from ..modules.spec import (
    BestOfNSpec,
    ChainOfThoughtSpec,
    EnsembleSpec,
    GraphSpec,
    GraphStep,
    LMChoice,
    KNNExample,
    KNNFewShotSpec,
    LoopSpec,
    LoopVariable,
    MajoritySpec,
    ModuleSpec,
    MultiChainComparisonSpec,
    ParallelSpec,
    PredictorSpec,
    PredictorState,
    PredictSpec,
    ReActSpec,
    RefineSpec,
    RetrieveSpec,
    ToolSpec,
    ValueSpec,
)

PROGRAM_NAME = re.compile(r"^programs/([^/@]+)(?:@([^/@]+))?$")

_ADAPTERS = {
    module_pb2.ADAPTER_KIND_UNSPECIFIED: "chat",
    module_pb2.ADAPTER_KIND_CHAT: "chat",
    module_pb2.ADAPTER_KIND_JSON: "json",
    module_pb2.ADAPTER_KIND_XML: "xml",
    module_pb2.ADAPTER_KIND_TWO_STEP: "two_step",
}
_ADAPTER_KINDS = {name: kind for kind, name in _ADAPTERS.items() if kind != module_pb2.ADAPTER_KIND_UNSPECIFIED}
_ROLES = {signature_pb2.FIELD_ROLE_INPUT: Role.INPUT, signature_pb2.FIELD_ROLE_OUTPUT: Role.OUTPUT}
_FIELD_ROLES = {role: value for value, role in _ROLES.items()}


# --------------------------------------------------------------------------- names


def program_ref(name: str, field: str, *, allow_revision: bool = True) -> ProgramRef:
    """Parse "programs/{id}" (and "programs/{id}@{revision}" when allowed)."""

    ref = _parsed_program_name(name)
    if ref is None or (ref.revision_id and not allow_revision):
        if not name:
            raise invalid(field, "is required: a program name such as \"programs/qa\"")
        expected = "programs/{id}[@{revision_id}]" if allow_revision else "programs/{id}"
        raise invalid(field, f"{name!r} is not a program name of the form {expected}")
    return ref


@functools.lru_cache(maxsize=1024)
def _parsed_program_name(name: str) -> ProgramRef | None:
    """The program a name refers to (None: not a program name), parsed once per name: every call
    of a stored program names it again."""

    match = PROGRAM_NAME.match(name)
    return None if match is None else ProgramRef(match.group(1), match.group(2))


def program_name(program_id: str) -> str:
    return f"programs/{program_id}"


# --------------------------------------------------------------------------- values
#
# Every value travels in two forms: a google.protobuf.Struct / Value (convenient with grpcurl, but its
# numbers are doubles and its objects unordered) and JSON text in the sibling `*_json` field (exact:
# integers stay integers, objects keep their key order). Requests: the JSON text wins when set; a
# Struct is read canonically (whole numbers as integers, keys sorted), so one request gives the same
# bytes on every server process. Responses carry both forms.

#: Upper bound of one `*_json` text in a request.
MAX_JSON_TEXT_BYTES = 1 << 20


def struct_to_dict(struct: struct_pb2.Struct, field: str = "request") -> dict[str, Any]:
    """A Struct read canonically: whole numbers as ints, object keys in sorted order.

    NaN and infinities (no JSON number can carry them) are INVALID_ARGUMENT naming ``field``. (This
    reads the messages directly: ``json_format.MessageToDict`` is pure Python and cost ~3 us for a
    one-field Struct.)"""

    try:
        return _read_struct(struct)
    except _NotJson as error:
        raise invalid(field, str(error)) from None


def struct_value(value: struct_pb2.Value, field: str = "request") -> Any:
    """A Value read canonically (see :func:`struct_to_dict`)."""

    try:
        return _read_value(value)
    except _NotJson as error:
        raise invalid(field, str(error)) from None


class _NotJson(ValueError):
    pass


def _read_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    fields = struct.fields
    return {key: _read_value(fields[key]) for key in sorted(fields)}


#: Whole numbers up to this size read as ints (beyond it a double no longer holds every integer).
_MAX_EXACT_INT = 2**53


def _read_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if number.is_integer():
            return int(number) if -_MAX_EXACT_INT <= number <= _MAX_EXACT_INT else number
        if number != number or number in (math.inf, -math.inf):
            raise _NotJson(f"holds {'NaN' if number != number else 'Infinity'}, which is not a JSON number")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _read_struct(value.struct_value)
    if kind == "list_value":
        return [_read_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind at all


def json_value(text: str, field: str) -> Any:
    """A JSON text from a request, exactly (ints stay ints, objects keep their key order)."""

    if len(text) > MAX_JSON_TEXT_BYTES:
        raise invalid(field, f"is {len(text)} characters long; at most {MAX_JSON_TEXT_BYTES} are accepted")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as error:
        raise invalid(field, f"is not valid JSON: {error}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_object(text: str, field: str) -> dict[str, Any]:
    value = json_value(text, field)
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object of field values, e.g. {\"question\": \"Why?\"}")
    return value


def values_of(struct: struct_pb2.Struct, text: str, field: str) -> dict[str, Any]:
    """Field values given as a Struct (`field`) and/or JSON text (`field`_json, which wins when set)."""

    return json_object(text, f"{field}_json") if text else struct_to_dict(struct, field)


#: json.dumps(value, ensure_ascii=False) without building an encoder per call.
_JSON = json.JSONEncoder(ensure_ascii=False)


def exact_json(value: Any) -> str:
    """The exact JSON text of a value (the `*_json` fields of responses)."""

    return _JSON.encode(_jsonable(value))


def values_fields(name: str, values: Any) -> dict[str, Any]:
    """Constructor arguments setting both forms of a values field: `name` (Struct) and `name`_json."""

    plain = _jsonable(dict(values))
    struct = struct_pb2.Struct()
    _fill_struct(struct, plain)
    return {name: struct, f"{name}_json": _JSON.encode(plain)}


def set_values(message: Any, name: str, values: Any) -> None:
    """:func:`values_fields` on a message already built (on a hot path: no Struct built to be
    copied into it)."""

    plain = _jsonable(dict(values))
    struct = getattr(message, name)
    if plain:
        _fill_struct(struct, plain)
    else:
        struct.SetInParent()  # present, as a Struct() constructor argument is
    setattr(message, f"{name}_json", _JSON.encode(plain))


def dict_to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    _fill_struct(struct, _jsonable(values))
    return struct


def to_struct_value(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    _fill_value(message, _jsonable(value))
    return message


def _fill_struct(struct: struct_pb2.Struct, plain: dict[str, Any]) -> None:
    fields = struct.fields
    for key, value in plain.items():
        if type(value) is str:
            fields[key].string_value = value
        else:
            _fill_value(fields[key], value)


def _fill_value(target: struct_pb2.Value, plain: Any) -> None:
    """Set ``target`` to a :func:`_jsonable` value (as ``Struct.update`` would, without its detours)."""

    if isinstance(plain, str):
        target.string_value = plain
    elif plain is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(plain, bool):
        target.bool_value = plain
    elif isinstance(plain, (int, float)):
        target.number_value = plain
    elif isinstance(plain, dict):
        struct = target.struct_value
        struct.SetInParent()  # an empty object is still an object
        _fill_struct(struct, plain)
    else:
        values = target.list_value
        values.SetInParent()
        for item in plain:
            _fill_value(values.values.add(), item)


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: tuples become lists, enums their values, other objects their text."""

    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, dict):
        return {str(k): v if type(v) in _SCALARS else _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "value") and not callable(value.value):  # enums
        return _jsonable(value.value)
    return str(value)


# --------------------------------------------------------------------------- signatures


def _json_schema(text: str, path: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise invalid(f"{path}.json_schema", f"is not valid JSON: {error}") from None
    if not isinstance(schema, dict):
        raise invalid(f"{path}.json_schema", "must be a JSON object")
    return schema


def type_from_proto(message: signature_pb2.TypeSpec, path: str = "type") -> TypeSpec:
    kind = TypeKind.STR if message.kind == signature_pb2.TYPE_KIND_UNSPECIFIED else TypeKind(
        signature_pb2.TypeKind.Name(message.kind).removeprefix("TYPE_KIND_").lower()
    )
    if message.values_json:
        values = tuple(json_value(text, f"{path}.values_json[{i}]") for i, text in enumerate(message.values_json))
    else:
        values = tuple(struct_value(v) for v in message.values)
    if message.variadic and (kind != TypeKind.TUPLE or len(message.args) != 1):
        raise invalid(f"{path}.variadic", "is for TYPE_KIND_TUPLE with exactly one of args: tuple[T, ...]")
    if message.none_first and kind != TypeKind.OPTIONAL:
        raise invalid(f"{path}.none_first", "is for TYPE_KIND_OPTIONAL only")
    if message.member_names and len(message.member_names) != len(values):
        raise invalid(f"{path}.member_names", f"must name each of the {len(values)} values, in order "
                      f"(got {len(message.member_names)} names)")
    return TypeSpec(
        kind=kind,
        args=tuple(type_from_proto(arg, f"{path}.args[{i}]") for i, arg in enumerate(message.args)),
        values=values,
        name=message.name,
        json_schema=_json_schema(message.json_schema, path) if message.json_schema else None,
        language=message.language,
        member_names=tuple(message.member_names),
        none_first=message.none_first,
        variadic=message.variadic,
    )


def type_to_proto(spec: TypeSpec) -> signature_pb2.TypeSpec:
    message = signature_pb2.TypeSpec(
        kind=signature_pb2.TypeKind.Value("TYPE_KIND_" + spec.kind.value.upper()),
        args=[type_to_proto(arg) for arg in spec.args],
        name=spec.name,
        language=spec.language,
        member_names=spec.member_names,
        none_first=spec.none_first,
        variadic=spec.variadic,
    )
    for value in spec.values:
        message.values.append(to_struct_value(value))
        message.values_json.append(exact_json(value))
    if spec.json_schema is not None:
        message.json_schema = json.dumps(spec.json_schema)
    return message


def signature_from_proto(message: signature_pb2.Signature, path: str) -> Signature:
    instructions = message.instructions if message.HasField("instructions") else None
    if message.text and message.fields:
        raise invalid(path, "give either text or fields, not both")
    if message.text:
        return parse_signature(message.text, instructions, field_path=f"{path}.text")
    if not message.fields:
        raise invalid(path, "is required: give text (\"question -> answer\") or fields")
    fields = []
    for index, item in enumerate(message.fields):
        if item.role not in _ROLES:
            raise invalid(f"{path}.fields[{index}].role", "must be FIELD_ROLE_INPUT or FIELD_ROLE_OUTPUT")
        fields.append(
            Field(
                name=item.name,
                role=_ROLES[item.role],
                type=type_from_proto(item.type, f"{path}.fields[{index}].type"),
                description=item.description if item.HasField("description") else None,
                prefix=item.prefix if item.HasField("prefix") else None,
                constraints=_constraints(item.constraints, f"{path}.fields[{index}].constraints"),
                **_default(item, f"{path}.fields[{index}].default_json"),
            )
        )
    return Signature(fields=tuple(fields), instructions=instructions)


def signature_to_proto(signature: Signature) -> signature_pb2.Signature:
    message = signature_pb2.Signature()
    if signature.instructions is not None:
        message.instructions = signature.instructions
    for item in signature.fields:
        field = message.fields.add(name=item.name, role=_FIELD_ROLES[item.role], type=type_to_proto(item.type))
        if item.description is not None:
            field.description = item.description
        if item.prefix is not None:
            field.prefix = item.prefix
        for name, value in item.constraints.items():
            field.constraints.add(name=name, value=json.dumps(value))
        if item.has_default:
            field.default_json = exact_json(item.default)
    return message


#: Upper bound of a field's `default_json`.
MAX_DEFAULT_JSON_BYTES = 64 << 10


def _default(item: signature_pb2.SignatureField, path: str) -> dict[str, Any]:
    """The Field arguments for an output field's default (none when unset)."""

    if not item.HasField("default_json"):
        return {}
    if item.role != signature_pb2.FIELD_ROLE_OUTPUT:
        raise invalid(path, "only output fields take a default (DSPy uses it when the LM leaves the field out)")
    if len(item.default_json) > MAX_DEFAULT_JSON_BYTES:
        raise invalid(path, f"is longer than {MAX_DEFAULT_JSON_BYTES} characters")
    return {"default": json_value(item.default_json, path), "has_default": True}


def _constraints(items, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        if item.name not in CONSTRAINT_LABELS:
            raise invalid(f"{path}[{index}].name", f"unknown constraint {item.name!r}; use {', '.join(CONSTRAINT_LABELS)}")
        try:
            value = json.loads(item.value)
        except json.JSONDecodeError:
            raise invalid(f"{path}[{index}].value", f"{item.value!r} is not a JSON number or boolean") from None
        if not isinstance(value, (int, float, bool)):
            raise invalid(f"{path}[{index}].value", "must be a JSON number or boolean")
        out[item.name] = value
    return out


def example_from_proto(message: signature_pb2.Example, path: str = "example") -> Example:
    data = values_of(message.data, message.data_json, f"{path}.data")
    return Example(data, tuple(message.input_keys), message.augmented)


def example_to_proto(example: Example) -> signature_pb2.Example:
    return signature_pb2.Example(
        **values_fields("data", example.data), input_keys=list(example.input_keys), augmented=example.augmented
    )


# --------------------------------------------------------------------------- LMs and modules


#: module_pb2.CachePolicy values -> the domain's cache policy names (None: unset).
CACHE_POLICIES = {
    module_pb2.CACHE_POLICY_UNSPECIFIED: None,
    module_pb2.CACHE_POLICY_USE: "use",
    module_pb2.CACHE_POLICY_BYPASS: "bypass",
    module_pb2.CACHE_POLICY_REFRESH: "refresh",
}


def lm_options_from_proto(options: module_pb2.LMOptions, **extra: Any) -> LMOptions:
    """Sampling options and cache policy from their message (``extra``: further LMOptions fields)."""

    return LMOptions(
        temperature=options.temperature if options.HasField("temperature") else None,
        max_tokens=options.max_tokens if options.HasField("max_tokens") else None,
        top_p=options.top_p if options.HasField("top_p") else None,
        stop=tuple(options.stop),
        seed=options.seed if options.HasField("seed") else None,
        cache=CACHE_POLICIES.get(options.cache),
        **extra,
    )


def lm_from_proto(message: module_pb2.LMSpec, path: str) -> LMChoice:
    """The LM choice of ``message``, its options checked (INVALID_ARGUMENT naming ``path.options.*``)."""

    return _lm_choice(message).validate(path)


def _lm_choice(message: module_pb2.LMSpec) -> LMChoice:
    lm_options = lm_options_from_proto(message.options)
    source = message.WhichOneof("source")
    if source == "dummy":
        dummy = DummySpec(
            responses=tuple(_dummy_response(r) for r in message.dummy.responses),
            rules=tuple(DummyRule(rule.contains, _dummy_response(rule.response)) for rule in message.dummy.rules),
            auto=message.dummy.auto,
        )
        return LMChoice(dummy=dummy, options=lm_options)
    return LMChoice(model=message.model, options=lm_options)


def _dummy_response(message: module_pb2.DummyResponse) -> DummyResponse:
    reply = message.WhichOneof("reply")
    if reply == "fields":
        return DummyResponse(fields=struct_to_dict(message.fields))
    if reply == "fields_json":
        return DummyResponse(fields=json_object(message.fields_json, "dummy.fields_json"))
    return DummyResponse(text=message.text)


def lm_to_proto(choice: LMChoice) -> module_pb2.LMSpec:
    message = module_pb2.LMSpec()
    if choice.dummy is not None:
        message.dummy.auto = choice.dummy.auto
        for response in choice.dummy.responses:
            message.dummy.responses.append(_dummy_response_to_proto(response))
        for rule in choice.dummy.rules:
            message.dummy.rules.add(contains=rule.contains, response=_dummy_response_to_proto(rule.response))
    elif choice.model:
        message.model = choice.model
    opts = choice.options
    for key in ("temperature", "max_tokens", "top_p", "seed"):
        if getattr(opts, key) is not None:
            setattr(message.options, key, getattr(opts, key))
    message.options.stop.extend(opts.stop)
    if opts.cache is not None:
        message.options.cache = {name: value for value, name in CACHE_POLICIES.items()}[opts.cache]
    return message


def _dummy_response_to_proto(response: DummyResponse) -> module_pb2.DummyResponse:
    if response.fields is not None:
        return module_pb2.DummyResponse(fields_json=exact_json(dict(response.fields)))
    return module_pb2.DummyResponse(text=response.text or "")


def predictor_from_proto(message: module_pb2.PredictorSpec, path: str) -> PredictorSpec:
    if not message.HasField("signature"):
        raise invalid(f"{path}.signature", "is required")
    return PredictorSpec(
        signature=signature_from_proto(message.signature, f"{path}.signature"),
        demos=tuple(example_from_proto(demo, f"{path}.demos[{i}]") for i, demo in enumerate(message.demos)),
        adapter=adapter_from_proto(message.adapter) or "chat",
        lm=lm_from_proto(message.lm, f"{path}.lm"),
        extraction_lm=lm_from_proto(message.extraction_lm, f"{path}.extraction_lm"),
    )


def adapter_from_proto(kind: int, field: str = "adapter") -> str | None:
    """The adapter name, or None when unspecified."""

    if kind == module_pb2.ADAPTER_KIND_UNSPECIFIED:
        return None
    if kind not in _ADAPTERS:
        raise invalid(field, f"unknown adapter kind {kind}")
    return _ADAPTERS[kind]


def predictor_to_proto(spec: PredictorSpec) -> module_pb2.PredictorSpec:
    message = module_pb2.PredictorSpec(
        signature=signature_to_proto(spec.signature),
        demos=[example_to_proto(demo) for demo in spec.demos],
        adapter=_ADAPTER_KINDS[spec.adapter],
    )
    for key in ("lm", "extraction_lm"):
        choice = getattr(spec, key)
        if choice.is_set or choice.options != LMOptions():
            getattr(message, key).CopyFrom(lm_to_proto(choice))
    return message


def module_from_proto(message: module_pb2.ModuleSpec, path: str) -> ModuleSpec:
    """The module spec of a message; checks what only the wire form can get wrong (unset oneofs and
    required messages). Everything else is checked when the module is built."""

    kind = message.WhichOneof("module")
    if kind is None:
        raise invalid(path, "is required: set one module kind (predict, chain_of_thought, react, ...)")
    body = getattr(message, kind)
    here = f"{path}.{kind}"

    def predictor() -> PredictorSpec:
        if not body.HasField("predictor"):
            raise invalid(f"{here}.predictor", "is required")
        return predictor_from_proto(body.predictor, f"{here}.predictor")

    def inner() -> ModuleSpec:
        if not body.HasField("module"):
            raise invalid(f"{here}.module", "is required: the module to run")
        return module_from_proto(body.module, f"{here}.module")

    if kind == "predict":
        return PredictSpec(predictor())
    if kind == "chain_of_thought":
        return ChainOfThoughtSpec(predictor())
    if kind == "react":
        return ReActSpec(
            predictor=predictor(),
            tools=tuple(_tool_from_proto(tool, f"{here}.tools[{i}]") for i, tool in enumerate(body.tools)),
            max_iters=body.max_iters or 20,
            react=_state_from_proto(body.react, f"{here}.react"),
            extract=_state_from_proto(body.extract, f"{here}.extract"),
        )
    if kind == "multi_chain_comparison":
        return MultiChainComparisonSpec(
            predictor=predictor(), m=body.m or 3,
            temperature=body.temperature if body.HasField("temperature") else 0.7,
            generator=module_from_proto(body.generator, f"{here}.generator") if body.HasField("generator") else None,
        )
    if kind in ("best_of_n", "refine"):
        module = inner()
        if not body.HasField("reward"):
            raise invalid(f"{here}.reward", "is required: exact_match or lm_judge")
        common = dict(
            module=module, n=body.n, reward=_reward_from_proto(body.reward, f"{here}.reward"),
            threshold=body.threshold, fail_count=body.fail_count if body.HasField("fail_count") else None,
        )
        if kind == "best_of_n":
            return BestOfNSpec(**common)
        return RefineSpec(**common, feedback_lm=lm_from_proto(body.feedback_lm, f"{here}.feedback_lm"))
    if kind == "parallel":
        return ParallelSpec(inner(), body.num_threads or 8, body.max_errors if body.HasField("max_errors") else 10)
    if kind == "majority":
        return MajoritySpec(inner(), body.n or 5, body.field)
    if kind == "ensemble":
        programs = tuple(module_from_proto(program, f"{here}.programs[{index}]")
                         for index, program in enumerate(body.programs))
        return EnsembleSpec(programs, ensemble_reduce_from_proto(body.reduce, f"{here}.reduce"), body.size, body.seed,
                            body.field)
    if kind == "knn_few_shot":
        return KNNFewShotSpec(
            module=inner(), k=body.k, embedding_model=body.embedding_model,
            examples=tuple(KNNExample(example_from_proto(item.example, f"{here}.examples[{i}].example"),
                                      tuple(item.embedding))
                           for i, item in enumerate(body.examples)),
            max_bootstrapped_demos=body.max_bootstrapped_demos if body.HasField("max_bootstrapped_demos") else 4,
            max_labeled_demos=body.max_labeled_demos if body.HasField("max_labeled_demos") else 16,
            max_rounds=body.max_rounds if body.HasField("max_rounds") else 1,
            teacher_lm=lm_from_proto(body.teacher_lm, f"{here}.teacher_lm"),
            metric=metric_from_proto(body.metric, f"{here}.metric") if body.HasField("metric") else None,
        )
    if kind == "retrieve":
        return _retrieve_from_proto(body, here)
    if kind == "loop":
        return _loop_from_proto(body, here)
    if kind == "value":
        return _value_from_proto(body, here)
    return _graph_from_proto(body, here)


def _graph_from_proto(body: module_pb2.GraphModule, here: str) -> GraphSpec:
    steps = []
    for index, step in enumerate(body.steps):
        at = f"{here}.steps[{index}]"
        if not step.HasField("module"):
            raise invalid(f"{at}.module", "is required")
        steps.append(GraphStep(step.name, module_from_proto(step.module, f"{at}.module"),
                               tuple(sorted(step.inputs.items()))))
    return GraphSpec(tuple(steps), tuple(sorted(body.outputs.items())))


def _retrieve_from_proto(body: module_pb2.RetrieveModule, here: str) -> RetrieveSpec:
    source = body.WhichOneof("source")
    if source is None:
        raise invalid(here, "set one source: corpus, colbertv2_url or caller_tool")
    target = getattr(body, source)
    if source == "corpus":
        if not target.startswith("corpora/"):
            raise invalid(f"{here}.corpus", f"{target!r} is not a corpus name of the form corpora/{{id}}")
        target = target[len("corpora/"):]
    if body.mode not in _MODES:
        raise invalid(f"{here}.mode", f"unknown retrieval mode {body.mode}")
    return RetrieveSpec(source, target, body.k or 3, _MODES[body.mode])


_MODES = {
    corpus_pb2.RETRIEVAL_MODE_UNSPECIFIED: "bm25",
    corpus_pb2.RETRIEVAL_MODE_BM25: "bm25",
    corpus_pb2.RETRIEVAL_MODE_DENSE: "dense",
    corpus_pb2.RETRIEVAL_MODE_HYBRID: "hybrid",
}
_MODE_ENUMS = {name: value for value, name in _MODES.items() if value}


def retrieval_mode_from_proto(value: int, path: str) -> str:
    if value not in _MODES:
        raise invalid(path, f"unknown retrieval mode {value}")
    return _MODES[value]


_ACCUMULATES = {
    module_pb2.LOOP_ACCUMULATE_UNSPECIFIED: "append",
    module_pb2.LOOP_ACCUMULATE_APPEND: "append",
    module_pb2.LOOP_ACCUMULATE_APPEND_UNIQUE: "append_unique",
    module_pb2.LOOP_ACCUMULATE_LAST: "last",
}
_ACCUMULATE_ENUMS = {name: value for value, name in _ACCUMULATES.items() if value}
_VALUE_OPERATIONS = {
    module_pb2.VALUE_OPERATION_TEMPLATE: "template",
    module_pb2.VALUE_OPERATION_JOIN: "join",
    module_pb2.VALUE_OPERATION_CONCAT: "concat",
    module_pb2.VALUE_OPERATION_FLATTEN: "flatten",
    module_pb2.VALUE_OPERATION_DEDUPE: "dedupe",
    module_pb2.VALUE_OPERATION_CONSTANT: "constant",
    module_pb2.VALUE_OPERATION_OBJECT: "object",
}
_VALUE_OPERATION_ENUMS = {name: value for value, name in _VALUE_OPERATIONS.items()}
#: Characters of a JSON text in a loop variable or a constant.
MAX_JSON_TEXT = 100_000


def _json_text(text: str, path: str) -> Any:
    if len(text) > MAX_JSON_TEXT:
        raise invalid(path, f"must be at most {MAX_JSON_TEXT} characters")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise invalid(path, f"is not valid JSON: {error}") from None


def _loop_from_proto(body: module_pb2.LoopModule, here: str) -> LoopSpec:
    if not body.HasField("body"):
        raise invalid(f"{here}.body", "is required: the sub-graph each iteration runs")
    variables = []
    for index, variable in enumerate(body.variables):
        at = f"{here}.variables[{index}]"
        if variable.accumulate not in _ACCUMULATES:
            raise invalid(f"{at}.accumulate", f"unknown accumulate value {variable.accumulate}")
        initial_set = bool(variable.initial_json)
        initial = _json_text(variable.initial_json, f"{at}.initial_json") if initial_set else None
        variables.append(LoopVariable(variable.name, variable.update, _ACCUMULATES[variable.accumulate], initial,
                                      initial_set))
    return LoopSpec(_graph_from_proto(body.body, f"{here}.body"), body.max_iters, tuple(variables), body.stop_when)


def _value_from_proto(body: module_pb2.ValueModule, here: str) -> ValueSpec:
    if body.operation not in _VALUE_OPERATIONS:
        raise invalid(f"{here}.operation", "is required: VALUE_OPERATION_TEMPLATE, _JOIN, _CONCAT, _FLATTEN, "
                      "_DEDUPE, _CONSTANT or _OBJECT")
    operation = _VALUE_OPERATIONS[body.operation]
    constant = None
    if operation == "constant":
        if not body.constant_json:
            raise invalid(f"{here}.constant_json", "is required for a constant (JSON text)")
        constant = _json_text(body.constant_json, f"{here}.constant_json")
    return ValueSpec(operation, tuple(body.inputs), body.template, body.separator, constant)


_REDUCES = {
    module_pb2.ENSEMBLE_REDUCE_UNSPECIFIED: "none",
    module_pb2.ENSEMBLE_REDUCE_NONE: "none",
    module_pb2.ENSEMBLE_REDUCE_MAJORITY: "majority",
}


def ensemble_reduce_from_proto(value: int, path: str) -> str:
    if value not in _REDUCES:
        raise invalid(path, "is not a known reduce (ENSEMBLE_REDUCE_NONE or ENSEMBLE_REDUCE_MAJORITY)")
    return _REDUCES[value]


def ensemble_reduce_to_proto(reduce: str) -> int:
    return module_pb2.ENSEMBLE_REDUCE_MAJORITY if reduce == "majority" else module_pb2.ENSEMBLE_REDUCE_NONE


def _tool_from_proto(message: module_pb2.ToolSpec, path: str) -> ToolSpec:
    args: Any = {}
    if message.args_json_schema:
        try:
            args = json.loads(message.args_json_schema)
        except json.JSONDecodeError as error:
            raise invalid(f"{path}.args_json_schema", f"is not valid JSON: {error}") from None
        if not isinstance(args, dict):
            raise invalid(f"{path}.args_json_schema", "must be a JSON object: argument name -> JSON schema")
    return ToolSpec(message.name, message.description, args, message.builtin)


def _state_from_proto(message: module_pb2.PredictorState, path: str) -> PredictorState:
    return PredictorState(
        message.instructions if message.HasField("instructions") else None,
        tuple(example_from_proto(demo, f"{path}.demos[{i}]") for i, demo in enumerate(message.demos)),
    )


def _reward_from_proto(message: module_pb2.RewardSpec, path: str) -> Metric:
    kind = message.WhichOneof("reward")
    if kind == "metric":
        return metric_from_proto(message.metric, f"{path}.metric")
    if kind == "exact_match":
        body = message.exact_match
        return FieldMetric("exact_match", body.field, body.reference_field, values=tuple(body.values))
    if kind == "lm_judge":
        body = message.lm_judge
        if not body.HasField("judge"):
            raise invalid(f"{path}.lm_judge.judge", "is required")
        judge = predictor_from_proto(body.judge, f"{path}.lm_judge.judge")
        score_field = body.score_field or first_score_output(judge.signature)
        return LMJudgeMetric(judge, {}, (score_field,) if score_field else (), chain_of_thought=body.chain_of_thought)
    raise invalid(path, "is required: metric (or the older exact_match / lm_judge forms)")


def metric_from_proto(message: metric_pb2.MetricSpec, path: str) -> Metric:
    kind = message.WhichOneof("metric")
    if kind is None:
        raise invalid(path, "set one of exact_match, token_f1, passage_match, contains, numeric, lm_judge, weighted")
    body = getattr(message, kind)
    if kind in ("exact_match", "token_f1", "passage_match", "contains", "numeric"):
        return FieldMetric(
            kind, field=body.field, label_field=body.label_field, predictor=body.predictor,
            frac=body.frac if kind == "exact_match" and body.HasField("frac") else None,
            case_sensitive=kind == "contains" and body.case_sensitive,
            abs_tolerance=body.abs_tolerance if kind == "numeric" else 0.0,
            rel_tolerance=body.rel_tolerance if kind == "numeric" else 0.0,
        )
    if kind == "lm_judge":
        lm = lm_from_proto(body.lm, f"{path}.lm_judge.lm") if body.HasField("lm") else LMChoice()
        threshold = body.threshold if body.HasField("threshold") else None
        if not body.HasField("signature"):
            if body.score_fields:
                raise invalid(f"{path}.lm_judge.score_fields", "applies only with a custom signature")
            if body.feedback_field:
                raise invalid(f"{path}.lm_judge.feedback_field", "applies only with a custom signature")
            judge = semantic_f1(body.decompositional, lm=lm, threshold=threshold, inputs=dict(body.inputs) or None)
            return dataclasses.replace(judge, chain_of_thought=not body.no_reasoning)
        signature = signature_from_proto(body.signature, f"{path}.lm_judge.signature")
        score_fields = tuple(body.score_fields) or tuple(n for n in [first_score_output(signature)] if n)
        return LMJudgeMetric(PredictorSpec(signature=signature, lm=lm), dict(body.inputs), score_fields,
                             threshold, not body.no_reasoning, body.feedback_field)
    terms = tuple(
        (term.weight, metric_from_proto(term.metric, f"{path}.weighted.terms[{i}].metric"))
        for i, term in enumerate(body.terms)
    )
    return WeightedMetric(terms)


def metric_to_proto(metric: Metric) -> metric_pb2.MetricSpec:
    if isinstance(metric, FieldMetric):
        values: dict[str, Any] = {"field": metric.field, "label_field": metric.label_field,
                                  "predictor": metric.predictor}
        if metric.kind == "exact_match" and metric.frac is not None:
            values["frac"] = metric.frac
        if metric.kind == "contains":
            values["case_sensitive"] = metric.case_sensitive
        if metric.kind == "numeric":
            values.update(abs_tolerance=metric.abs_tolerance, rel_tolerance=metric.rel_tolerance)
        message_class = {
            "exact_match": metric_pb2.ExactMatchMetric, "token_f1": metric_pb2.TokenF1Metric,
            "passage_match": metric_pb2.PassageMatchMetric, "contains": metric_pb2.ContainsMetric,
            "numeric": metric_pb2.NumericMetric,
        }[metric.kind]
        return metric_pb2.MetricSpec(**{metric.kind: message_class(**values)})
    if isinstance(metric, LMJudgeMetric):
        judge = metric_pb2.LMJudgeMetric(
            signature=signature_to_proto(metric.judge.signature), inputs=dict(metric.inputs),
            score_fields=list(metric.score_fields), lm=lm_to_proto(metric.judge.lm),
            feedback_field=metric.feedback_field, no_reasoning=not metric.chain_of_thought,
        )
        if metric.threshold is not None:
            judge.threshold = metric.threshold
        return metric_pb2.MetricSpec(lm_judge=judge)
    return metric_pb2.MetricSpec(weighted=metric_pb2.WeightedMetric(
        terms=[metric_pb2.WeightedTerm(weight=w, metric=metric_to_proto(m)) for w, m in metric.terms]
    ))


def module_to_proto(spec: ModuleSpec) -> module_pb2.ModuleSpec:
    message = module_pb2.ModuleSpec()
    body = getattr(message, spec.kind.value)
    if isinstance(spec, (PredictSpec, ChainOfThoughtSpec, ReActSpec, MultiChainComparisonSpec)):
        body.predictor.CopyFrom(predictor_to_proto(spec.predictor))
    if isinstance(spec, ReActSpec):
        for tool in spec.tools:
            body.tools.add(name=tool.name, description=tool.description, builtin=tool.builtin,
                           args_json_schema=json.dumps(dict(tool.args)) if tool.args else "")
        body.max_iters = spec.max_iters
        for key in ("react", "extract"):
            state = getattr(spec, key)
            target = getattr(body, key)
            if state.instructions is not None:
                target.instructions = state.instructions
            target.demos.extend(example_to_proto(demo) for demo in state.demos)
    elif isinstance(spec, MultiChainComparisonSpec):
        body.m, body.temperature = spec.m, spec.temperature
        if spec.generator is not None:
            body.generator.CopyFrom(module_to_proto(spec.generator))
    elif isinstance(spec, (BestOfNSpec, RefineSpec)):
        body.module.CopyFrom(module_to_proto(spec.module))
        body.n, body.threshold = spec.n, spec.threshold
        if spec.fail_count is not None:
            body.fail_count = spec.fail_count
        _reward_to_proto(spec.reward, body.reward)
        if isinstance(spec, RefineSpec) and (spec.feedback_lm.is_set or spec.feedback_lm.options != LMOptions()):
            body.feedback_lm.CopyFrom(lm_to_proto(spec.feedback_lm))
    elif isinstance(spec, ParallelSpec):
        body.module.CopyFrom(module_to_proto(spec.module))
        body.num_threads, body.max_errors = spec.num_threads, spec.max_errors
    elif isinstance(spec, MajoritySpec):
        body.module.CopyFrom(module_to_proto(spec.module))
        body.n, body.field = spec.n, spec.field
    elif isinstance(spec, EnsembleSpec):
        body.programs.extend(module_to_proto(program) for program in spec.programs)
        body.reduce = ensemble_reduce_to_proto(spec.reduce)
        body.size, body.seed, body.field = spec.size, spec.seed, spec.field
    elif isinstance(spec, KNNFewShotSpec):
        body.module.CopyFrom(module_to_proto(spec.module))
        body.k, body.embedding_model = spec.k, spec.embedding_model
        for item in spec.examples:
            body.examples.add(example=example_to_proto(item.example), embedding=item.embedding)
        body.max_bootstrapped_demos = spec.max_bootstrapped_demos
        body.max_labeled_demos = spec.max_labeled_demos
        body.max_rounds = spec.max_rounds
        if spec.teacher_lm.is_set or spec.teacher_lm.options != LMOptions():
            body.teacher_lm.CopyFrom(lm_to_proto(spec.teacher_lm))
        if spec.metric is not None:
            body.metric.CopyFrom(metric_to_proto(spec.metric))
    elif isinstance(spec, GraphSpec):
        _graph_to_proto(spec, body)
    elif isinstance(spec, RetrieveSpec):
        target = f"corpora/{spec.target}" if spec.source == "corpus" else spec.target
        setattr(body, spec.source, target)
        body.k = spec.k
        if spec.mode != "bm25":
            body.mode = _MODE_ENUMS[spec.mode]
    elif isinstance(spec, LoopSpec):
        _graph_to_proto(spec.body, body.body)
        body.max_iters, body.stop_when = spec.max_iters, spec.stop_when
        for variable in spec.variables:
            body.variables.add(name=variable.name, update=variable.update,
                               accumulate=_ACCUMULATE_ENUMS[variable.accumulate],
                               initial_json=json.dumps(variable.initial) if variable.initial_set else "")
    elif isinstance(spec, ValueSpec):
        body.operation = _VALUE_OPERATION_ENUMS[spec.operation]
        body.inputs.extend(spec.inputs)
        body.template, body.separator = spec.template, spec.separator
        if spec.operation == "constant":
            body.constant_json = json.dumps(spec.constant)
    return message


def _graph_to_proto(spec: GraphSpec, body: module_pb2.GraphModule) -> None:
    for step in spec.steps:
        body.steps.add(name=step.name, module=module_to_proto(step.module), inputs=dict(step.inputs))
    body.outputs.update(dict(spec.outputs))


def _reward_to_proto(metric: Metric, message: module_pb2.RewardSpec) -> None:
    message.metric.CopyFrom(metric_to_proto(metric))


# --------------------------------------------------------------------------- programs and predictions


def _timestamp(value) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def program_to_proto(program: Program) -> program_pb2.Program:
    record = program.record
    return program_pb2.Program(
        name=program_name(record.program_id),
        display_name=record.display_name,
        description=record.description,
        labels=dict(record.labels),
        module=module_to_proto(program.module),
        revision_id=record.revision_id,
        revision_create_time=_timestamp(record.revision_create_time),
        create_time=_timestamp(record.create_time),
        update_time=_timestamp(record.update_time),
        etag=record.etag,
        active_revision_id=record.active_revision_id,
    )


def _usage(model: str, usage, calls: int) -> prediction_pb2.ModelUsage:
    return prediction_pb2.ModelUsage(
        model=model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        calls=calls,
    )


def prediction_to_proto(prediction: Prediction, *, program_id: str = "", revision_id: str = "",
                        into: prediction_pb2.Prediction | None = None) -> prediction_pb2.Prediction:
    """The wire form of a prediction, written into ``into`` when given (a response's own field: no
    copy of a built message) and returned."""

    message = prediction_pb2.Prediction() if into is None else into
    set_values(message, "outputs", prediction.outputs)
    if program_id:
        message.program = program_name(program_id)
    if revision_id:
        message.revision_id = revision_id
    for entry in prediction.usage:
        usage = entry.usage
        message.usage.add(model=entry.model, prompt_tokens=usage.prompt_tokens,
                          completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens,
                          calls=entry.calls)
    for fallback in prediction.adapter_fallbacks:
        message.adapter_fallbacks.add(predictor=fallback.predictor, from_adapter=fallback.from_adapter,
                                      to_adapter=fallback.to_adapter, error=fallback.error)
    for step in prediction.trace:
        trace = message.trace.add(
            predictor=step.predictor,
            adapter=step.adapter,
            model=step.model,
            usage=_usage(step.model, step.usage, 1),
            lm_call_ids=step.lm_call_ids,
            cache_hit=step.cache_hit,
        )
        set_values(trace, "inputs", step.inputs)
        set_values(trace, "outputs", step.outputs)
        trace.latency.FromNanoseconds(int(step.latency_s * 1e9))
    return message


def rendered_prompt_to_proto(predictor: str, rendered: RenderedPrompt) -> inference_pb2.RenderPromptResponse:
    response = inference_pb2.RenderPromptResponse(predictor=predictor, adapter=rendered.adapter)
    for message in rendered.messages:
        content = message["content"]
        if isinstance(content, str):
            response.messages.add(role=message["role"], content=content)
        else:
            response.messages.add(role=message["role"], content_parts=[dict_to_struct(part) for part in content])
    options = request_options(rendered.options)
    response.request_options.CopyFrom(dict_to_struct(options))
    response.request_options_json = exact_json(options)
    return response


def request_options(options: LMOptions) -> dict[str, Any]:
    """The options as they appear in a chat completions request body (unset ones left out)."""

    out: dict[str, Any] = {}
    for key in ("temperature", "max_tokens", "top_p", "seed", "response_format"):
        value = getattr(options, key)
        if value is not None:
            out[key] = value
    if options.stop:
        out["stop"] = list(options.stop)
    if options.n != 1:
        out["n"] = options.n
    return out
