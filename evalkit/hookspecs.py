"""The hooks an evalkit plugin can implement.

Every hook receives a ``register(name, factory)`` callable (the datasette/llm pattern), so a
plugin declares what it provides without importing anything heavy: the *factory* is only
called when a run actually selects ``name``. A factory receives the keyword arguments of its
config node (everything except ``name:``) and the run's shared settings where documented.

Factories per kind:

* **backend** ``factory(**options) -> Backend`` — see :class:`evalkit.types.Backend`. Backends
  that load weights receive ``model=`` (the ``model`` config node as a dict) and
  ``generation=`` (:class:`evalkit.types.GenerationConfig`) in addition to their options.
* **head** ``factory(**options) -> Head`` — how a backend's output becomes a prediction
  (``lm`` text generation vs. ``accept_head`` per-token regression).
* **parser** ``factory(**options) -> Callable[[str], Any]`` — raw model text to a structured
  prediction; raising ``ValueError`` marks the sample as a parse error.
* **metric** ``factory(**options) -> torchmetrics.Metric`` — updated with
  ``update(preds, target)``; ``compute()`` returns a JSON-able dict or tensor.
* **callback** ``factory(**options) -> object`` — training-loop integrations (Lightning, HF).
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
