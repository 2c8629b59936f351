"""BFCL's own checker as a reference, and many generated model outputs per BFCL row.

``reference()`` installs ``bfcl-eval`` with ``pip install --no-deps --target`` into a directory
under the system temp dir keyed by version (reused by later runs), stubs the modules that would
import every provider SDK (``bfcl_eval.constants.model_config``), tree-sitter (BFCL's Java/JS
parsers) or tenacity (its API retries), and imports BFCL's AST checker, its output-format helpers and its prompt-mode decoder.
Shared by ``tests/tools`` and ``benchmarks/bfcl_checker.py``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

BFCL_EVAL_VERSION = "2026.3.23"
FC_MODEL = "evalkit-fc-model"  # a model BFCL scores with dots as underscores
PROMPT_MODEL = "evalkit-prompt-model"


def install_bfcl_eval(version: str = BFCL_EVAL_VERSION) -> Path:
    """``pip install --no-deps --target`` bfcl-eval once per version; returns the target dir."""
    target = Path(tempfile.gettempdir()) / f"evalkit-bfcl-eval-{version}"
    if (target / "bfcl_eval" / "eval_checker" / "ast_eval" / "ast_checker.py").is_file():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"evalkit-bfcl-eval-{version}-", dir=tempfile.gettempdir()))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check", "--target", str(staging), f"bfcl-eval=={version}"],
        check=True,
        timeout=600,
    )
    try:
        staging.rename(target)
    except OSError:  # another process installed it meanwhile
        pass
    return target


@dataclass
class Reference:
    target: Path
    ast_checker: Callable[..., dict]
    is_function_calling_format_output: Callable[[Any], bool]
    is_empty_output: Callable[[Any], bool]
    decode_prompting: Callable[[str], list]
    language_python: Any

    @property
    def data_dir(self) -> Path:
        return self.target / "bfcl_eval" / "data"


def _stub(name: str, **attrs: Any) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def reference() -> Reference:
    target = install_bfcl_eval()
    if str(target) not in sys.path:
        sys.path.append(str(target))

    @dataclass
    class _Config:
        underscore_to_dot: bool

    def _no_parser(*_: Any, **__: Any) -> Any:
        raise NotImplementedError("Java/JavaScript parsing is stubbed out")

    _stub("bfcl_eval.constants.model_config", MODEL_CONFIG_MAPPING={FC_MODEL.replace("_", "/"): _Config(True), PROMPT_MODEL.replace("_", "/"): _Config(False)})
    _stub("bfcl_eval.model_handler.parser.java_parser", parse_java_function_call=_no_parser)
    _stub("bfcl_eval.model_handler.parser.js_parser", parse_javascript_function_call=_no_parser)
    try:  # BFCL's handler utils import tenacity for their API retries; the decoder needs none of it
        import tenacity  # noqa: F401
    except ImportError:
        _stub("tenacity", **{n: (lambda *_a, **_k: (lambda f: f)) for n in ("retry", "retry_if_exception_message", "retry_if_exception_type", "wait_random_exponential")})
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_empty_output, is_function_calling_format_output

    return Reference(target, ast_checker, is_function_calling_format_output, is_empty_output, default_decode_ast_prompting, Language.PYTHON)


def reference_verdict(ref: Reference, category: str, functions: list, ground_truth: Any, decoded: Any, *, fc: bool) -> tuple[bool, str | None]:
    """BFCL's verdict: its runner's decode/relevance steps around its ``ast_checker``."""
    if "relevance" in category:
        has_call = decoded is not None and not ref.is_empty_output(decoded)
        if "irrelevance" in category:
            return (False, "irrelevance_error:decoder_success") if has_call else (True, None)
        return (True, None) if has_call else (False, "relevance_error:decoder_failed")
    if decoded is None:
        return False, "ast_decoder:decoder_failed"
    if not ref.is_function_calling_format_output(decoded):
        return False, "ast_decoder:decoder_wrong_output_format"
    result = ref.ast_checker(functions, copy.deepcopy(decoded), ground_truth, ref.language_python, category, FC_MODEL if fc else PROMPT_MODEL)
    return bool(result["valid"]), (None if result["valid"] else result["error_type"])


def load_rows(data_dir: Path, category: str) -> list[dict[str, Any]]:
    """Raw rows of a category with their ``ground_truth`` (BFCL's files, read plainly)."""
    rows = [json.loads(line) for line in (data_dir / f"BFCL_v4_{category}.json").read_text(encoding="utf-8").splitlines() if line.strip()]
    answers = data_dir / "possible_answer" / f"BFCL_v4_{category}.json"
    if answers.is_file():
        truth = {r["id"]: r["ground_truth"] for r in map(json.loads, answers.read_text(encoding="utf-8").splitlines()) if r}
        for row in rows:
            row["ground_truth"] = truth.get(row["id"])
    return rows


# ----------------------------------------------------------------------------- outputs
def _first(options: list) -> tuple[bool, Any]:
    for option in options:
        if option != "":
            return True, copy.deepcopy(option)
    return False, None


def _doc(functions: list, name: str) -> dict:
    return next((f for f in functions if f["name"] == name), functions[0])


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 1.5
    if isinstance(value, str):
        return value + " zz"
    if isinstance(value, list):
        return value + [value[0] if value else "zz"]
    if isinstance(value, dict):
        return {**value, "zz_extra": "zz"}
    return "zz"


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "zz"
    if isinstance(value, dict):
        return ["zz"]
    return 0


def _string_variants(value: Any) -> Iterator[Any]:
    if isinstance(value, str) and value:
        yield value.upper()
        yield value.replace(" ", "-")
        yield value.replace(" ", "")
        yield "  " + value.replace(",", " ,") + "."
        yield value.replace("'", '"') if "'" in value else value + "_"
        yield value.replace(" ", "") + "!"


def _right_call(answer: dict, functions: list, *, fc: bool, omit_optional: bool = False, pick: int = 0) -> dict:
    name, options_by_param = next(iter(answer.items()))
    args: dict[str, Any] = {}
    for param, options in options_by_param.items():
        if omit_optional and "" in options:
            continue
        concrete = [o for o in options if o != ""]
        if not concrete:
            continue
        args[param] = copy.deepcopy(concrete[min(pick, len(concrete) - 1)])
    return {(name.replace(".", "_") if fc else name): args}


def outputs_for(row: dict, *, fc: bool) -> Iterator[tuple[str, Any]]:
    """``(kind, decoded output)`` pairs for one row: right answers and many kinds of wrong."""
    functions = row["function"]
    truth = row.get("ground_truth")
    yield "no call", None
    yield "empty list", []
    if not functions:  # some live_irrelevance rows offer no function at all
        yield "made-up call", [{"made_up": {"x": 1}}]
        return
    first = functions[0]
    some_call = {(first["name"].replace(".", "_") if fc else first["name"]): {p: "x" for p in first["parameters"].get("required", [])}}
    yield "some call", [some_call]
    yield "call without args", [{next(iter(some_call)): {}}]
    if not truth:
        yield "two calls", [some_call, some_call]
        return
    right = [_right_call(a, functions, fc=fc) for a in truth]
    yield "right", right
    yield "optional omitted", [_right_call(a, functions, fc=fc, omit_optional=True) for a in truth]
    yield "second option", [_right_call(a, functions, fc=fc, pick=1) for a in truth]
    yield "last option", [_right_call(a, functions, fc=fc, pick=99) for a in truth]
    yield "swapped order", list(reversed(right))
    yield "wrong count (extra)", right + [copy.deepcopy(right[0])]
    yield "wrong count (fewer)", right[:-1]
    yield "dotted name", [{k.replace("_", "."): v for k, v in c.items()} for c in right]
    yield "wrong name", [{k + "_x": v for k, v in c.items()} for c in right]
    yield "unexpected param", [{k: {**v, "zz_unexpected": 1}} for c in right for k, v in c.items()]
    for index, answer in enumerate(truth):
        name, options_by_param = next(iter(answer.items()))
        doc = _doc(functions, name)
        properties = doc["parameters"]["properties"]
        for param in doc["parameters"].get("required", []):
            broken = copy.deepcopy(right)
            call_args = next(iter(broken[index].values()))
            if param in call_args:
                del call_args[param]
                yield "missing required", broken
        for param in properties:
            if param not in options_by_param:
                broken = copy.deepcopy(right)
                next(iter(broken[index].values()))[param] = "zz"
                yield "documented param not in answer", broken
        for param, options in options_by_param.items():
            found, value = _first(options)
            if not found:
                continue
            kind = properties.get(param, {}).get("type")
            variants: list[tuple[str, Any]] = [("wrong value", _wrong_value(value)), ("wrong type", _wrong_type(value)), ("null", None)]
            if isinstance(value, float) and value == int(value):
                variants.append(("int for float", int(value)))
            if isinstance(value, int) and not isinstance(value, bool):
                variants.append(("float for int", float(value)))
            if isinstance(value, list):
                variants.append(("tuple", tuple(value)))
                variants.append(("reversed list", list(reversed(value))))
                variants.append(("empty list", []))
                variants += [("list item variant", [v.upper() if isinstance(v, str) else v for v in value])]
                if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                    variants.append(("list of ints", [int(v) for v in value]))
                    variants.append(("list of floats", [float(v) for v in value]))
            if isinstance(value, dict):
                variants.append(("dict missing key", dict(list(value.items())[1:])))
                variants.append(("dict value variant", {k: (v.upper() if isinstance(v, str) else _wrong_value(v)) for k, v in value.items()}))
                variants.append(("dict as string", json.dumps(value)))
            if kind == "string" or isinstance(value, str):
                variants += [("string variant", v) for v in _string_variants(value)]
            for label, new in variants:
                broken = copy.deepcopy(right)
                next(iter(broken[index].values()))[param] = new
                yield label, broken
