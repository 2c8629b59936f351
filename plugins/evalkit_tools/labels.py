"""The seed's tool-call label format (``data.label_format=tool_calls``): a list of
``{"toolName": str, "paramList": {...}}`` calls (an empty list means "no call")."""

from __future__ import annotations

import json
from typing import Any


class ToolCallLabels:
    """Checks that a label is a list of calls, each an object with ``toolName`` and an object
    (or absent/null) ``paramList``."""

    def check(self, label: Any) -> str | None:
        if not isinstance(label, list):
            return f"label must be a list of tool calls, got {type(label).__name__}"
        for i, call in enumerate(label):
            if not isinstance(call, dict) or "toolName" not in call:
                return f"label[{i}] must be an object with a 'toolName' key, got {json.dumps(call, ensure_ascii=False)[:80]}"
            params = call.get("paramList", {})
            if params is not None and not isinstance(params, dict):
                return f"label[{i}].paramList must be an object, got {type(params).__name__}"
        return None
