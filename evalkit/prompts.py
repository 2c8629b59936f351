"""Jinja2 prompt templates rendered with a row's fields into chat ``messages``.

Templates see every field of the row as a variable (Unicode field names work) and the whole
row as ``row``; ``prompt.vars`` adds variables computed by Jinja expressions over the row
(``{query: "当前query | tojson"}``), so a prompt file written for other variable names works
unchanged. ``tojson`` keeps non-ASCII text readable. A missing field is an error naming the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError, Undefined, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from evalkit.errors import ConfigError, DataError
from evalkit.types import Sample


def _tojson(value: Any, indent: int | None = None) -> str:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # a missing field: the usual "row has no field" error
    return json.dumps(value, ensure_ascii=False, indent=indent)


def make_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    env.filters["tojson"] = _tojson
    return env


_UNSET = object()


def load_prompt_file(path: str | Path) -> dict[str, Any]:
    """Read a prompt YAML (``system_prompt`` / ``user_prompt`` keys, as users' tool-call prompt files have them)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError("prompt file not found", where=f"prompt.file={path}", fix="check the path (relative to where you ran evalkit)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where) from None
    if not isinstance(data, dict):
        raise ConfigError("prompt file must be a mapping with system_prompt / user_prompt", where=str(path))
    unknown = set(data) - {"system_prompt", "user_prompt"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}; expected system_prompt, user_prompt", where=str(path))
    return data


FILE_KEYS = ("system_prompt", "user_prompt")
DEFAULT_FROM_FILE = {"system": "system_prompt", "user": "user_prompt"}


@dataclass
class PromptBuilder:
    """Builds chat messages for a sample.

    ``system=None`` means no system message. Explicit ``system``/``user`` win over the
    templates from ``file``; ``from_file`` says which key of the file feeds which role (the
    seed's files keep the user-message template under ``system_prompt``). ``vars`` maps a
    template variable to a Jinja expression evaluated over the row.
    """

    system: str | None = None
    user: str | None = None
    source: str = "prompt"
    vars: dict[str, str] | None = None

    @classmethod
    def from_config(
        cls,
        system: Any = _UNSET,
        user: Any = _UNSET,
        file: str | None = None,
        vars: dict[str, str] | None = None,
        from_file: dict[str, str | None] | None = None,
    ) -> "PromptBuilder":
        file_data: dict[str, Any] = load_prompt_file(file) if file else {}
        mapping = {**DEFAULT_FROM_FILE, **(from_file or {})}
        for role, key in mapping.items():
            if role not in ("system", "user"):
                raise ConfigError(f"unknown role '{role}'; valid: system, user", where=f"prompt.from_file.{role}")
            if key is not None and key not in FILE_KEYS:
                raise ConfigError(f"unknown prompt-file key {key!r}; valid: {', '.join(FILE_KEYS)} or null", where=f"prompt.from_file.{role}")
        sys_t = (file_data.get(mapping["system"]) if mapping["system"] else None) if system is _UNSET else system
        user_t = (file_data.get(mapping["user"]) if mapping["user"] else None) if user is _UNSET else user
        if user_t is None:
            raise ConfigError(
                "no user prompt template",
                where="prompt.user",
                fix="set prompt.user or prompt.file (a YAML with user_prompt, or prompt.from_file.user=system_prompt)",
            )
        return cls(system=sys_t, user=user_t, source=file or "prompt", vars=dict(vars) if vars else None)

    def __post_init__(self) -> None:
        env = make_environment()
        try:
            self._system = env.from_string(self.system) if self.system is not None else None
            self._user = env.from_string(self.user) if self.user is not None else None
        except TemplateError as exc:
            raise ConfigError(f"invalid Jinja2 template: {exc}", where=f"{self.source} (line {getattr(exc, 'lineno', '?')})") from None
        self._vars: dict[str, Any] = {}
        for name, expression in (self.vars or {}).items():
            if not isinstance(expression, str) or not expression.strip():
                raise ConfigError(f"must be a Jinja expression over the row, got {expression!r}", where=f"prompt.vars.{name}", fix=f"e.g. prompt.vars.{name}='{name} | tojson'")
            try:
                self._vars[name] = env.compile_expression(expression, undefined_to_none=False)
            except TemplateError as exc:
                raise ConfigError(f"invalid Jinja expression {expression!r}: {exc}", where=f"prompt.vars.{name}") from None

    def _context(self, sample: Sample) -> dict[str, Any]:
        row = {k: v for k, v in sample.row.items() if isinstance(k, str)}
        context = {**row, "row": sample.row}
        for name, expression in self._vars.items():
            try:
                value = expression(**row, row=sample.row)
                if isinstance(value, Undefined):
                    value._fail_with_undefined_error()
            except UndefinedError as exc:
                raise DataError(
                    f"prompt.vars.{name} ({self.vars[name]!r}) uses a field the row does not have ({exc.message})",
                    where=sample.where,
                    fix=f"add the field to the data, or write prompt.vars.{name} with `| default(none)`",
                ) from None
            except TemplateError as exc:
                raise DataError(f"prompt.vars.{name} ({self.vars[name]!r}) failed: {exc}", where=sample.where) from None
            context[name] = value
        return context

    def render(self, sample: Sample) -> list[dict[str, str]]:
        context = self._context(sample)
        messages: list[dict[str, str]] = []
        try:
            if self._system is not None:
                messages.append({"role": "system", "content": self._system.render(context)})
            if self._user is not None:
                messages.append({"role": "user", "content": self._user.render(context)})
        except UndefinedError as exc:
            raise DataError(
                f"prompt template uses a field the row does not have ({exc.message})",
                where=sample.where,
                fix="add the field to the data, or use `| default(none)` in the template",
            ) from None
        except TemplateError as exc:
            raise DataError(f"prompt template failed: {exc}", where=sample.where) from None
        return messages


MISSING = "???"  # OmegaConf's "not set here": take the prompt file's template


def prompt_from_config(node: Any) -> "PromptBuilder | None":
    """A ``prompt`` node (``file``, ``system``, ``user``, ``vars``, ``from_file``) -> templates,
    the one rule for runs and training: ``???`` means "take the file's", ``null`` "no such
    message"; no file and no user template means no prompt (rows' own ``messages`` are used)."""
    from evalkit.config import to_container
    from evalkit.paths import resolve_path
    from evalkit.schema import split_section

    if node is None or isinstance(node, PromptBuilder):
        return node
    data = to_container(node)
    if not data:
        return None
    if not isinstance(data, dict):
        raise ConfigError(f"prompt must be a mapping with file/system/user, got {type(data).__name__}", where="prompt")
    prompt, _ = split_section("prompt", data)
    explicit = {key: prompt[key] for key in ("system", "user") if key in prompt and prompt[key] != MISSING}
    file = prompt.get("file")
    if file == MISSING:
        raise ConfigError("this prompt needs a prompt file", where="prompt.file", fix="add prompt.file=/path/to/prompt.yaml")
    if not file and not explicit.get("user"):
        return None
    return PromptBuilder.from_config(file=resolve_path(file) if file else None, vars=prompt.get("vars"), from_file=prompt.get("from_file"), **explicit)
