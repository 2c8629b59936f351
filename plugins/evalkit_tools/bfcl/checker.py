"""BFCL's AST checker semantics, written for evalkit (``bfcl-eval`` cannot be a dependency:
it pins numpy 1.26 and ~30 provider SDKs).

A verdict is ``(valid, error_type)`` with BFCL's own ``error_type`` strings, so evalkit's
results line up with BFCL score files; ``tests/tools/test_bfcl_reference.py`` compares every
verdict with ``bfcl_eval``'s checker on BFCL's real rows. The rules, as BFCL applies them to
Python categories:

* the model output is decoded calls ``[{name: {param: value}}]``; ``None`` means decoding failed;
* simple categories need exactly one call, ``multiple`` compares the first call with the one
  expected, ``parallel*`` matches calls to expected calls in any order (greedy, first match);
* a call's name must be the expected one (dots as underscores for function-calling models);
  required parameters must be present, every given parameter must be documented *and* in the
  possible answer, omitted ones must allow ``""`` (optional);
* types: Python types of the documented JSON types, ``int`` accepted for ``float``, tuples as
  lists, one level of item types checked for arrays, a value of the possible answer's type
  accepted as a "variable";
* values: strings compared after BFCL's standardisation (lower case, no spaces or ``,./-_*^``,
  ``'`` as ``"``), lists item-wise likewise, dicts key by key, lists of dicts dict by dict,
  everything else by ``==`` against the possible values;
* relevance / irrelevance: "decodes to a non-empty call" must be true / false.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping, Sequence
from typing import Any

Verdict = tuple[bool, "str | None"]
OK: Verdict = (True, None)

PY_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict, "any": str,
}  # fmt: skip
NESTED_TYPES = ("array", "tuple")

# Every error type this checker returns (metric states count them by position).
ERROR_TYPES: tuple[str, ...] = (
    "ast_decoder:decoder_failed",
    "ast_decoder:decoder_wrong_output_format",
    "irrelevance_error:decoder_success",
    "relevance_error:decoder_failed",
    "simple_function_checker:wrong_count",
    "simple_function_checker:wrong_func_name",
    "simple_function_checker:missing_required",
    "simple_function_checker:unexpected_param",
    "simple_function_checker:missing_optional",
    "multiple_function_checker:wrong_count",
    "parallel_function_checker_no_order:wrong_count",
    "parallel_function_checker_no_order:cannot_find_match",
    "type_error:simple",
    "type_error:nested",
    "value_error:string",
    "value_error:list/tuple",
    "value_error:dict_key",
    "value_error:dict_value",
    "value_error:list_dict_count",
    "value_error:others",
    "dict_checker:unclear",
    "list_dict_checker:unclear",
)

_STRIP = re.compile(r"[ ,./\-_*^]")


@lru_cache(maxsize=1 << 16)  # possible answers recur for every output scored against them
def standardize(text: str) -> str:
    """BFCL's string standardisation: ``"April 1, 2024"`` equals ``"april 1 2024"``."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize(value) if type(value) is str else value


def is_relevance_category(category: str) -> bool:
    return "relevance" in category  # relevance and irrelevance, live or not


def well_formed(decoded: Any) -> bool:
    """``[{name: {args}}, ...]``: what BFCL accepts as function-calling output (``[]`` too)."""
    return type(decoded) is list and all(type(c) is dict and len(c) == 1 and type(next(iter(c.values()))) is dict for c in decoded)


def has_call(decoded: Any) -> bool:
    """BFCL's relevance test: decoded, well formed, and not ``[]`` / ``[{}]``."""
    if decoded is None or not well_formed(decoded) or not decoded:
        return False
    return not (len(decoded) == 1 and not decoded[0])


# ----------------------------------------------------------------------------- types
def _answer_type(options: Sequence[Any]) -> type | None:
    for option in options:
        if option != "":
            return type(option)
    return None


def _item_types_ok(value: list, options: Sequence[Any], item_type: type) -> bool:
    """One level of item types: some possible answer (or an optional/non-list one) fits."""
    for option in options:
        if type(option) is not list:
            return True
        answer_type = _answer_type(option)
        if all(type(item) is item_type or (answer_type is not None and type(item) is answer_type) for item in value):
            return True
    return False


def check_type(value: Any, options: Sequence[Any], expected: type, item_type: type | None) -> tuple[bool, str | None, bool]:
    """``(valid, error_type, is_variable)``; a variable is a value of the possible answer's
    type where that differs from the documented one (its value is then compared as is)."""
    answer_type = _answer_type(options)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if item_type is None or _item_types_ok(value, options, item_type):
            return True, None, variable
        if answer_type is not None and type(value) is answer_type:
            return False, "type_error:nested", True
        return False, "type_error:simple", variable
    if answer_type is not None and type(value) is answer_type:
        return True, None, True
    return False, "type_error:simple", variable


# ----------------------------------------------------------------------------- values
def check_string(value: str, options: Sequence[Any]) -> Verdict:
    allowed = [standardize(o) for o in options if type(o) is str]
    return OK if standardize(value) in allowed else (False, "value_error:string")


def check_list(value: list, options: Sequence[Any]) -> Verdict:
    given = [_std(v) for v in value]
    allowed = [[_std(v) for v in option] for option in options]
    return OK if given in allowed else (False, "value_error:list/tuple")


def check_dict(value: Mapping[str, Any], options: Sequence[Any]) -> Verdict:
    verdict: Verdict = (False, "dict_checker:unclear")
    for option in options:
        if option == "":
            continue
        verdict = (False, "dict_checker:unclear")
        fits = True
        for key, item in value.items():
            if key not in option:
                verdict, fits = (False, "value_error:dict_key"), False
                break
            if _std(item) not in [_std(v) for v in option[key]]:
                verdict, fits = (False, "value_error:dict_value"), False
                break
        for key, allowed in option.items():  # runs even after a mismatch above, as BFCL's does
            if key not in value and "" not in allowed:
                verdict, fits = (False, "value_error:dict_key"), False
                break
        if fits:
            return OK
    return verdict


def check_dict_list(value: list, options: Sequence[Any]) -> Verdict:
    verdict: Verdict = (False, "list_dict_checker:unclear")
    for option in options:
        if len(value) != len(option):
            verdict = (False, "value_error:list_dict_count")
            continue
        fits = True
        for item, expected in zip(value, option):
            verdict = check_dict(item, [expected])
            if not verdict[0]:
                fits = False
                break
        if fits:
            return OK
    return verdict


# ----------------------------------------------------------------------------- calls
def find_function(functions: Any, name: str) -> Mapping[str, Any] | None:
    if isinstance(functions, Mapping):
        return functions
    return next((f for f in functions if f["name"] == name), None)


def check_call(function: Mapping[str, Any], call: Mapping[str, Any], expected: Mapping[str, Any], *, fc_names: bool = True) -> Verdict:
    """One decoded call ``{name: {args}}`` against one expected ``{name: {param: [values]}}``."""
    options_by_param: Mapping[str, Any] = next(iter(expected.values()))
    name = function["name"]
    if fc_names and "." in name:
        name = name.replace(".", "_")
    if name not in call:
        return False, "simple_function_checker:wrong_func_name"
    arguments = call[name]
    parameters = function["parameters"]
    documented = parameters["properties"]
    for param in parameters.get("required", ()):
        if param not in arguments:
            return False, "simple_function_checker:missing_required"
    for param, value in arguments.items():
        if param not in documented or param not in options_by_param:
            return False, "simple_function_checker:unexpected_param"
        options = options_by_param[param]
        schema = documented[param]
        kind = schema["type"]
        expected_type = PY_TYPES.get(kind, str)
        item_type = PY_TYPES.get(schema["items"]["type"], str) if kind in NESTED_TYPES else None
        if kind == "tuple" and type(value) is tuple:
            value = list(value)
        elif kind == "float" and type(value) is int:
            value = float(value)
        valid, error, variable = check_type(value, options, expected_type, item_type)
        if not valid:
            return False, error
        if not variable:
            if expected_type is dict:
                verdict = check_dict(value, options)
            elif expected_type is list and item_type is dict:
                verdict = check_dict_list(value, options)
            elif expected_type is str:
                verdict = check_string(value, options)
            elif expected_type is list:
                verdict = check_list(value, options)
            else:
                verdict = None
            if verdict is not None:
                if not verdict[0]:
                    return verdict
                continue
        if value not in options:
            return False, "value_error:others"
    for param, options in options_by_param.items():
        if param not in arguments and "" not in options:
            return False, "simple_function_checker:missing_optional"
    return OK


def check_parallel(functions: Any, calls: list, expected: list, *, fc_names: bool = True) -> Verdict:
    if len(calls) != len(expected):
        return False, "parallel_function_checker_no_order:wrong_count"
    used: set[int] = set()
    for answer in expected:
        function = find_function(functions, next(iter(answer)))
        for index, call in enumerate(calls):
            if index not in used and check_call(function, call, answer, fc_names=fc_names)[0]:  # type: ignore[arg-type]
                used.add(index)
                break
        else:
            return False, "parallel_function_checker_no_order:cannot_find_match"
    return OK


def check_sample(category: str, functions: Any, ground_truth: list | None, decoded: Any, *, fc_names: bool = True) -> Verdict:
    """BFCL's verdict for one sample of ``category`` (decoded model output, or ``None``)."""
    if is_relevance_category(category):
        if "irrelevance" in category:
            return (False, "irrelevance_error:decoder_success") if has_call(decoded) else OK
        return OK if has_call(decoded) else (False, "relevance_error:decoder_failed")
    if decoded is None:
        return False, "ast_decoder:decoder_failed"
    if not well_formed(decoded):
        return False, "ast_decoder:decoder_wrong_output_format"
    expected = ground_truth or []
    if "parallel" in category:
        return check_parallel(functions, decoded, expected, fc_names=fc_names)
    if "multiple" in category:
        if len(decoded) != len(expected):
            return False, "multiple_function_checker:wrong_count"
        return check_call(find_function(functions, next(iter(expected[0]))), decoded[0], expected[0], fc_names=fc_names)  # type: ignore[arg-type]
    if len(decoded) != 1:
        return False, "simple_function_checker:wrong_count"
    first = functions if isinstance(functions, Mapping) else functions[0]
    return check_call(first, decoded[0], expected[0], fc_names=fc_names)
