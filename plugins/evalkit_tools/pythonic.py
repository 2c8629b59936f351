"""Python-syntax calls (``[get_weather(city="Paris"), get_time(tz="CET")]``) read with ``ast``.

This is the answer format of BFCL's prompt mode. Decoding follows BFCL's: surrounding
backticks, newlines and spaces are dropped, missing outer brackets are added, a single call or a
list of calls is accepted and only keyword arguments count. Values are literals, lists, dicts,
tuples, negative numbers and constant arithmetic (computed here, never with ``eval``); a bare
name or attribute (``x``, ``math.pi``) stays as its text, a call without keywords becomes its
source text and a call with keywords a nested ``{name: {args}}``, as BFCL decodes them.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}  # fmt: skip
_MAX_POWER = 1000  # no 10**10**10 from a model output


class PythonCallError(ValueError):
    """The text is not a list of Python function calls."""


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _number(node: ast.AST) -> Any:
    value = _value(node)
    if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
        raise PythonCallError(f"arithmetic on a non-number: {ast.unparse(node)[:60]}")
    return value


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        number = _number(node.operand)
        return -number if isinstance(node.op, ast.USub) else number
    if isinstance(node, ast.List):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(v) for v in node.elts)
    if isinstance(node, ast.Set):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise PythonCallError("dict unpacking (**) is not a value")
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _number(node.left), _number(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_POWER:
            raise PythonCallError("exponent too large")
        try:
            return _BINARY[type(node.op)](left, right)
        except (ArithmeticError, ValueError) as exc:
            raise PythonCallError(f"arithmetic failed: {exc}") from None
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _dotted(node) or ast.unparse(node)
    if isinstance(node, ast.Call):
        return _call(node) if node.keywords else ast.unparse(node)
    if isinstance(node, (ast.Subscript, ast.Lambda, ast.JoinedStr)):
        return ast.unparse(node)
    raise PythonCallError(f"unsupported value {type(node).__name__}: {ast.unparse(node)[:60]}")


def _call(node: ast.Call) -> dict[str, dict[str, Any]]:
    name = _dotted(node.func)
    if not name:
        raise PythonCallError(f"not a function name: {ast.unparse(node.func)[:60]}")
    return {name: {kw.arg: _value(kw.value) for kw in node.keywords if kw.arg is not None}}


def parse_python_calls(text: str) -> list[dict[str, dict[str, Any]]]:
    """Python call syntax -> BFCL-decoded calls ``[{name: {param: value}}]``; raises
    :class:`PythonCallError` when the text is not calls (plain prose, syntax errors)."""
    body = text.strip("`\n ")
    if not body.startswith("["):
        body = "[" + body
    if not body.endswith("]"):
        body = body + "]"
    try:
        tree = ast.parse(body.strip().strip("'"), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise PythonCallError(f"not Python call syntax ({type(exc).__name__})") from None
    node = tree.body
    if isinstance(node, ast.Call):
        return [_call(node)]
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise PythonCallError("not a list of calls")
    calls = []
    for element in node.elts:
        if not isinstance(element, ast.Call):
            raise PythonCallError(f"list item is not a call: {ast.unparse(element)[:60]}")
        calls.append(_call(element))
    return calls
