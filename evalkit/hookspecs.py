"""The hooks an evalkit plugin can implement.

Every hook receives a ``register(name, factory)`` callable (the datasette/llm pattern), so a
plugin declares what it provides without importing anything heavy: the *factory* is only
called when a run actually selects ``name``. A factory receives the keyword arguments of its
config node (everything except ``name:``) and the run's shared settings where documented.

Run settings a factory receives when it has a parameter of that name and type
(:class:`evalkit.factory.RunSettings`): ``model`` (the ``model`` node as a dict),
``generation`` (:class:`evalkit.types.GenerationConfig`), ``cache``
(:class:`evalkit.cache.ResponseCache`), ``progress`` (:class:`evalkit.progress.RunProgress`)
and ``run_dir`` (:class:`pathlib.Path`). An option the node sets itself wins.

Factories per kind (contracts in :mod:`evalkit.types`; guide in ``docs/plugins.md``):

* **backend** ``-> Backend`` (checked with ``isinstance`` when built); class attributes
  ``uses_messages = False`` (no prompt needs to render) and ``light = True`` (no torch needed: built and run in a forked child
  while the metrics load, see :mod:`evalkit.forked`);
  a ``from_model(model, tokenizer, ...)`` classmethod serves evaluation during training;
* **head** ``-> Head`` / :class:`evalkit.types.ScoreHead`; **parser** ``-> parse(text)`` or an
  object with ``parse_message(message)``; ``ValueError`` marks a parse error;
* **metric** ``-> torchmetrics.Metric`` (optional ``sample_scores``, see ``SampleScoring``);
* **callback** ``-> object`` (training loops); **label_format** ``-> LabelFormat``;
  **report** ``-> Report``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("evalkit")


class Register(Protocol):
    """The ``register`` callable handed to every ``evalkit_register_*`` hook.

    ``factory`` is a callable, or a ``"package.module:attr"`` string that evalkit imports
    only when a run selects ``name`` — the way to keep torch-heavy plugins cheap to list.
    """

    def __call__(self, name: str, factory: Callable[..., Any] | str) -> None: ...


@hookspec
def evalkit_register_backends(register: Register) -> None:
    """Register model backends: ``register("api", make_api_backend)``.

    A backend turns chat messages into text (``generate``) and/or scores token ids
    (``score``). Selected with ``backend.name``.
    """


@hookspec
def evalkit_register_heads(register: Register) -> None:
    """Register heads: ``register("accept_head", AcceptHead)``.

    A head decides what the model's final layer produces — LM text or per-token
    regression scores. Selected with ``head.name``.
    """


@hookspec
def evalkit_register_parsers(register: Register) -> None:
    """Register output parsers: ``register("json_label", make_json_label_parser)``.

    The factory returns ``parse(text) -> prediction``; ``ValueError`` means "unparseable".
    Selected with ``parser.name``.
    """


@hookspec
def evalkit_register_metrics(register: Register) -> None:
    """Register metrics: ``register("tool_f1", ToolCallF1)``.

    The factory returns a ``torchmetrics.Metric``. Selected per key with
    ``metrics.<key>.name``; the key names the result in ``metrics.json``.
    """


@hookspec
def evalkit_register_callbacks(register: Register) -> None:
    """Register training-loop callbacks: ``register("lightning", EvalKitCallback)``."""


@hookspec
def evalkit_register_label_formats(register: Register) -> None:
    """Register a domain's label format: ``register("tool_calls", ToolCallLabels)``.

    The factory returns a :class:`evalkit.types.LabelFormat`; selected with
    ``data.label_format`` and built with the ``data.*`` options the core does not own.
    """


@hookspec
def evalkit_register_reports(register: Register) -> None:
    """Register end-of-run reports: ``register("toolcall", ToolCallReport)``.

    The factory returns a :class:`evalkit.types.Report`, built with the ``report.*`` options its
    signature names. At the end of a run every report whose ``applies(ctx)`` is true writes its
    files into the run dir (``report.xlsx`` is the tool-call plugin's).
    """


@hookspec
def evalkit_config_searchpath() -> list[str] | str | None:
    """Return config locations added to Hydra's search path.

    For example ``"pkg://my_plugin.conf"``, a package holding ``backend/mybackend.yaml`` so
    that ``backend=mybackend`` composes. Entries later in the path never shadow evalkit's own.
    """
