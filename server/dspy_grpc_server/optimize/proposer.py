"""DSPy's GroundedProposer, as MIPROv2 uses it: instruction candidates grounded in a summary of the
trainset, a description of the program, bootstrapped demos and a random prompting tip.

DSPy describes the program from its Python source; a stored program has none, so the "program
code" shown to the prompt model is the module's signatures written out the way DSPy prints them.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.example import Example
from ..core.signature import Signature, parse_signature
from ..modules.build import describe_module
from ..modules.spec import ChainOfThoughtSpec, ModuleSpec, PredictSpec
from . import program
from .runner import ProgramRunner, with_rollout

TIPS = {
    "none": "",
    "creative": "Don't be afraid to be creative when creating the new instruction!",
    "simple": "Keep the instruction clear and concise.",
    "description": "Make sure your instruction is very informative and descriptive.",
    "high_stakes": "The instruction should include a high stakes scenario in which the LM must solve the task!",
    "persona": 'Include a persona that is relevant to the task in the instruction (ie. "You are a ...")',
}


def _signature(text: str, instructions: str, descriptions: Mapping[str, str]) -> Signature:
    signature = parse_signature(text, instructions)
    for name, description in descriptions.items():
        signature = signature.with_field(name, description=description)
    return signature


OBSERVATION_SUMMARIZER = _signature(
    "observations -> summary",
    "Given a series of observations I have made about my dataset, please summarize them into a brief 2-3 sentence "
    "summary which highlights only the most important details.",
    {"observations": "Observations I have made about my dataset",
     "summary": "Two to Three sentence summary of only the most significant highlights of my observations"},
)
DATASET_DESCRIPTOR = _signature(
    "examples -> observations",
    "Given several examples from a dataset please write observations about trends that hold for most or all of the "
    "samples. Some areas you may consider in your observations: topics, content, syntax, conciseness, etc. It will "
    "be useful to make an educated guess as to the nature of the task this dataset will enable. Don't be afraid to "
    "be creative",
    {"examples": "Sample data points from the dataset",
     "observations": "Somethings that holds true for most or all of the data you observed"},
)
DATASET_DESCRIPTOR_WITH_PRIOR = _signature(
    "examples, prior_observations -> observations",
    "Given several examples from a dataset please write observations about trends that hold for most or all of the "
    "samples. I will also provide you with a few observations I have already made.  Please add your own "
    "observations or if you feel the observations are comprehensive say 'COMPLETE' Some areas you may consider in "
    "your observations: topics, content, syntax, conciceness, etc. It will be useful to make an educated guess as "
    "to the nature of the task this dataset will enable. Don't be afraid to be creative",
    {"examples": "Sample data points from the dataset",
     "prior_observations": "Some prior observations I made about the data",
     "observations": "Somethings that holds true for most or all of the data you observed or COMPLETE if you have "
                     "nothing to add"},
)
DESCRIBE_PROGRAM = _signature(
    "program_code, program_example -> program_description",
    "Below is some pseudo-code for a pipeline that solves tasks with calls to language models. Please describe what "
    "type of task this program appears to be designed to solve, and how it appears to work.",
    {"program_code": "Pseudocode for a language model program designed to solve a particular task.",
     "program_example": "An example of the program in use.",
     "program_description": "Describe what task the program is designed to solve, and how it goes about solving "
                            "this task."},
)
DESCRIBE_MODULE = _signature(
    "program_code, program_example, program_description, module -> module_description",
    "Below is some pseudo-code for a pipeline that solves tasks with calls to language models. Please describe the "
    "purpose of one of the specified module in this pipeline.",
    {"program_code": "Pseudocode for a language model program designed to solve a particular task.",
     "program_example": "An example of the program in use.",
     "program_description": "Summary of the task the program is designed to solve, and how it goes about solving it.",
     "module": "The module in the program that we want to describe.",
     "module_description": "Description of the module's role in the broader program."},
)

_GENERATE_FIELDS = {
    "dataset_description": "A description of the dataset that we are using.",
    "program_code": "Language model program designed to solve a particular task.",
    "program_description": "Summary of the task the program is designed to solve, and how it goes about solving it.",
    "module": "The module to create an instruction for.",
    "module_description": "Description of the module to create an instruction for.",
    "task_demos": "Example inputs/outputs of our module.",
    "basic_instruction": "Basic instruction.",
    "tip": "A suggestion for how to go about generating the new instruction.",
    "proposed_instruction": "Propose an instruction that will be used to prompt a Language Model to perform this task.",
}


def generate_instruction_signature(*, dataset_summary: bool, program_aware: bool, tip: bool) -> Signature:
    """DSPy's GenerateSingleModuleInstruction with the input fields the flags select."""

    inputs = (["dataset_description"] if dataset_summary else []) + (
        ["program_code", "program_description", "module", "module_description"] if program_aware else []
    ) + ["task_demos", "basic_instruction"] + (["tip"] if tip else [])
    signature = parse_signature(
        f"{', '.join(inputs)} -> proposed_instruction",
        "Use the information below to learn about a task that we are trying to solve using calls to an LM, then "
        "generate a new instruction that will be used to prompt a Language Model to better solve the task.",
    )
    return _with(signature, _GENERATE_FIELDS)


def _with(signature: Signature, descriptions: Mapping[str, str]) -> Signature:
    names = {f.name for f in signature.fields}
    for name, description in descriptions.items():
        if name in names:
            signature = signature.with_field(name, description=description)
    return signature


_PREFIX = re.compile(r"^[\*\s]*(([\w\'\-]+\s+){0,4}[\w\'\-]+):\s*")


def strip_prefix(text: str) -> str:
    """DSPy's ``strip_prefix``: drop a leading "Label:" of up to five words, then surrounding quotes."""

    return _PREFIX.sub("", text, count=1).strip('"')


def example_repr(example: Example) -> str:
    """DSPy's ``repr(Example)`` with sorted input keys (as its dataset summarizer shows examples)."""

    keys = ", ".join(sorted(repr(key) for key in example.input_keys))
    return f"Example({dict(example.data)!r}) (input_keys={{{keys}}})"


def examples_repr(examples: Sequence[Example]) -> str:
    return "[" + ", ".join(example_repr(e) for e in examples) + "]"


def program_code(module: ModuleSpec) -> str:
    """What DSPy's ``get_dspy_source_code`` gives for the module: nothing for a bare Predict, the
    inner predictor's signature for ChainOfThought. Other programs have no Python source: they are
    shown as the DSPy code that would build them (graphs as a ``dspy.Module`` class)."""

    if isinstance(module, PredictSpec):
        return "\n\n"
    if not isinstance(module, ChainOfThoughtSpec):
        return describe_module(module) + "\n\n"
    (view,) = program.predictors(module)
    signature = view.signature
    inputs = ", ".join(f.name for f in signature.input_fields)
    outputs = ", ".join(f.name for f in signature.output_fields)
    lines = [f"StringSignature({inputs} -> {outputs}", f"    instructions={signature.effective_instructions!r}"]
    lines += [f"    {f.name} = Field(prefix={f.effective_prefix!r})" for f in signature.ordered_fields]
    return "\n".join(lines) + "\n)\n\n\n\n"


def example_string(signature: Signature, demo: Example) -> str:
    """DSPy's ``create_example_string``: "Prefix: value" for each field of the predictor."""

    return "\n".join(f"{f.effective_prefix} {demo.data.get(f.name)}" for f in signature.ordered_fields)


async def dataset_summary(runner: ProgramRunner, trainset: Sequence[Example], batch_size: int) -> str:
    """DSPy's ``create_dataset_summary``: observations over batches of the trainset, then a summary."""

    async def ask(signature: Signature, inputs: dict[str, Any]) -> dict[str, Any]:
        return (await runner.predict_n(signature, inputs, n=1, temperature=1.0))[0]

    upper = min(len(trainset), batch_size)
    observations = str((await ask(DATASET_DESCRIPTOR, {"examples": examples_repr(trainset[:upper])}))["observations"])
    skips = calls = 0
    try:
        for start in range(batch_size, len(trainset), batch_size):
            calls += 1
            if calls >= 10:
                break
            batch = trainset[start:min(len(trainset), start + batch_size)]
            output = str((await ask(DATASET_DESCRIPTOR_WITH_PRIOR,
                                    {"prior_observations": observations, "examples": examples_repr(batch)}))["observations"])
            if len(output) >= 8 and output[:8].upper() == "COMPLETE":
                skips += 1
                if skips >= 5:
                    break
                continue
            observations += output
    except Exception:  # noqa: BLE001 - DSPy summarizes what it has so far
        pass
    summary = await ask(OBSERVATION_SUMMARIZER, {"observations": observations})
    return strip_prefix(str(summary["summary"]))


@dataclass(frozen=True)
class ProposerConfig:
    program_aware: bool = True
    data_aware: bool = True
    tip_aware: bool = True
    fewshot_aware: bool = True
    view_data_batch_size: int = 10
    init_temperature: float = 1.0
    num_demos_in_context: int = 3


async def dataset_summary_or_none(runner: ProgramRunner, trainset: Sequence[Example],
                                  config: ProposerConfig) -> str | None:
    """The trainset summary the proposer grounds instructions in (None when not data-aware or when
    summarizing failed: DSPy then proposes without one)."""

    if not config.data_aware:
        return None
    try:
        async with runner.slot():
            return await dataset_summary(runner, trainset, config.view_data_batch_size)
    except Exception:  # noqa: BLE001 - as DSPy: carry on without a summary
        return None


async def propose_instructions(
    runner: ProgramRunner, module: ModuleSpec, demo_candidates: Mapping[str, list[tuple[Example, ...]]] | None,
    n: int, rng: random.Random, config: ProposerConfig, summary: Awaitable[str | None],
) -> dict[str, list[str]]:
    """Instruction candidates per predictor (``n`` at most; the first is the current instruction).

    ``summary`` (a future: the trainset summary may still be in the making) is awaited only for the
    last step of each proposal, the one that shows it to the prompt model."""

    views = program.predictors(module)
    num_demos = max(len(demo_candidates[views[0].name]), 1) if demo_candidates else n
    use_demos = config.fewshot_aware and bool(demo_candidates)
    jobs: list[tuple[str, int, str, int]] = []
    for view in views:
        for demo_set in range(num_demos)[: min(n, num_demos)]:
            tip = TIPS[rng.choice(list(TIPS))] if config.tip_aware else ""
            jobs.append((view.name, demo_set, tip, rng.randint(0, 10**9)))
    code = program_code(module)

    async def one(name: str, demo_set: int, tip: str, rollout: int) -> str:
        async with runner.slot():
            return await propose(name, demo_set, tip, rollout)

    async def propose(name: str, demo_set: int, tip: str, rollout: int) -> str:
        view = next(v for v in views if v.name == name)
        lm = with_rollout(runner.prompt_lm, rollout, config.init_temperature)
        task_demos = ""
        if use_demos and demo_candidates:
            sets = demo_candidates[name]
            ordered = [sets[demo_set]] + sets[demo_set + 1:] + sets[:demo_set]
            strings = [example_string(view.signature, d) for s in ordered for d in s if d.augmented]
            task_demos = "\n\n".join(strings[: config.num_demos_in_context]) + "\n\n"
        if not task_demos.strip() or demo_set == 0:
            task_demos = "No task demos provided."
        inputs: dict[str, Any] = {"task_demos": task_demos, "basic_instruction": view.signature.effective_instructions}
        aware = config.program_aware
        if aware:
            try:
                described = await runner.predict_n(
                    DESCRIBE_PROGRAM, {"program_code": code, "program_example": task_demos}, n=1,
                    temperature=config.init_temperature, lm=lm)
                description = strip_prefix(str(described[0]["program_description"]))
                module_code = (f"Predict({', '.join(f.name for f in view.signature.input_fields)}) -> "
                               f"{', '.join(f.name for f in view.signature.output_fields)}")
                module_description = await runner.predict_n(
                    DESCRIBE_MODULE, {"program_code": code, "program_example": task_demos,
                                      "program_description": description, "module": module_code},
                    n=1, temperature=config.init_temperature, lm=lm)
                inputs.update(program_code=code, program_description=description, module=module_code,
                              module_description=module_description[0]["module_description"])
            except Exception:  # noqa: BLE001 - DSPy falls back to a proposer that is not program aware
                aware = False
        description_of_data = await summary
        if description_of_data is not None:
            inputs["dataset_description"] = description_of_data
        if tip:
            inputs["tip"] = tip
        signature = generate_instruction_signature(dataset_summary=description_of_data is not None,
                                                   program_aware=aware, tip=bool(tip))
        outputs = await runner.predict_n(signature, inputs, n=1, temperature=config.init_temperature, lm=lm)
        return strip_prefix(strip_prefix(str(outputs[0]["proposed_instruction"])))

    proposals = await asyncio.gather(*(one(*job) for job in jobs))
    out: dict[str, list[str]] = {view.name: [] for view in views}
    for (name, *_), proposal in zip(jobs, proposals, strict=True):
        out[name].append(proposal)
    for view in views:
        if out[view.name]:
            out[view.name][0] = view.signature.effective_instructions
        else:
            out[view.name] = [view.signature.effective_instructions]
    return out
