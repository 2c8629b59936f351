"""What a run *is* (model, backend, data and its fingerprint, prompt, generation settings), read
from its directory — shown in the header of ``report.html`` and compared between runs: two
runs on different data, prompts, generation settings or backends are not directly comparable."""

from __future__ import annotations

import hashlib
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.runs import FinishedRun

BACKEND_MODEL_KEYS = ("model", "base_url", "path", "model_path")


def _file_digest(path: Any) -> str | None:
    try:
        return hashlib.sha256(Path(str(path)).read_bytes()).hexdigest()
    except (OSError, TypeError, ValueError):
        return None


def identity(config: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """The run's identity as plain data (no secrets: config and run info are redacted already)."""
    backend = dict(config.get("backend") or {})
    model = dict(config.get("model") or {})
    prompt = dict(config.get("prompt") or {})
    dataset = dict(info.get("dataset") or {})
    data = dict(config.get("data") or {})
    model_name = model.get("path") or next((backend.get(k) for k in BACKEND_MODEL_KEYS if backend.get(k)), None)
    prompt_file = prompt.get("file")
    templates = {k: prompt[k] for k in ("system", "user") if prompt.get(k) not in (None, "???")}
    return {
        "model": model_name,
        "backend": backend.get("name"),
        "backend_options": {k: v for k, v in backend.items() if k != "name" and not isinstance(v, (dict, list))},
        "data_file": dataset.get("path") or data.get("path"),
        "data_sha256": dataset.get("sha256"),
        "data_rows": dataset.get("total_rows"),
        "data_limit": dataset.get("limit"),
        "prompt_file": prompt_file,
        "prompt_sha256": _file_digest(prompt_file) if prompt_file else None,
        "prompt_overrides": templates,
        "generation": dict(config.get("generation") or {}),
        "parser": (config.get("parser") or {}).get("name") if isinstance(config.get("parser"), Mapping) else config.get("parser"),
        "head": (config.get("head") or {}).get("name") if isinstance(config.get("head"), Mapping) else None,
        "overrides": list(info.get("overrides") or []),
    }


def run_identity(run: FinishedRun) -> dict[str, Any]:
    return identity(run.config, run.info)


def _prompt_key(ident: Mapping[str, Any]) -> Any:
    return (ident.get("prompt_sha256") or ident.get("prompt_file"), sorted(ident.get("prompt_overrides", {}).items()))


CHECKS = (
    ("data", "data fingerprint", lambda i: (i.get("data_sha256"), i.get("data_limit"))),
    ("prompt", "prompt", _prompt_key),
    ("generation", "generation settings", lambda i: sorted((k, str(v)) for k, v in (i.get("generation") or {}).items())),
    ("backend", "backend", lambda i: i.get("backend")),
)


def comparability(idents: Sequence[Mapping[str, Any]], names: Sequence[str], base: int = 0) -> dict[str, Any]:
    """``{"comparable": bool, "reasons": [{"what", "run", "base_value", "value"}]}`` against the
    base run: what differs that makes a delta mean more than the change under study."""
    reasons: list[dict[str, Any]] = []
    if not idents:
        return {"comparable": True, "reasons": reasons}
    ref = idents[base]
    for i, ident in enumerate(idents):
        if i == base:
            continue
        for what, label, key in CHECKS:
            if key(ident) != key(ref):
                reasons.append({"what": what, "label": label, "run": names[i], "base_value": _show(what, ref), "value": _show(what, ident)})
    return {"comparable": not reasons, "reasons": reasons}


def _show(what: str, ident: Mapping[str, Any]) -> str:
    if what == "data":
        sha = ident.get("data_sha256") or "unknown"
        return f"{ident.get('data_file')} (sha256 {sha[:12]}, limit {ident.get('data_limit')})"
    if what == "prompt":
        extra = f" + {', '.join(ident.get('prompt_overrides') or {})}" if ident.get("prompt_overrides") else ""
        return f"{ident.get('prompt_file')}{extra}"
    if what == "generation":
        return ", ".join(f"{k}={v}" for k, v in (ident.get("generation") or {}).items())
    return str(ident.get("backend"))
