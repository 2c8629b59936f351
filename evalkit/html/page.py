"""One page shell for ``report.html`` and ``compare.html``: the Jinja2 template, stylesheet
and explorer script from package data, inlined, plus the embedded JSON data."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from evalkit import __version__
from evalkit.html.samples import MAX_FIELD_CHARS
from evalkit.html.svg import render


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    return resources.files("evalkit.html").joinpath("assets", name).read_text(encoding="utf-8")


def fmt(value: Any) -> str:
    """A figure as a page shows it: 4 decimals for fractions, plain for the rest."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value and abs(value) < 1e-4:
            return f"{value:.2e}"  # small p-values stay visible
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def script_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</script>`` break-out)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def jsonable(value: Any) -> Any:
    """NaN/inf -> None, so the embedded JSON is valid for ``JSON.parse``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _data_json(data: Any) -> str:
    try:
        return script_json(data)
    except ValueError:  # NaN/inf somewhere: walk the data once to replace them
        return script_json(jsonable(data))


def _bytecode_cache() -> Any:
    """Jinja's own per-user cache of compiled templates (keyed by the source's checksum, so
    an edited template is compiled afresh): compiling the page costs about 0.06 s a run."""
    import jinja2

    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # no private temp dir to be had: compile every time
        return None


@lru_cache(maxsize=1)
def page_template() -> Any:
    """The compiled page template (compiled once per process, its code cached across runs)."""
    import jinja2

    loader = jinja2.FunctionLoader(lambda name: (asset(name), None, lambda: True))
    env = jinja2.Environment(  # lenient: optional section keys
        loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True, bytecode_cache=_bytecode_cache(),
    )
    return env.get_template("page.html.j2")


def render_page(**context: Any) -> str:
    template = page_template()
    data = context.pop("data", {})
    defaults = {"sections": [], "banners": [], "identity": [], "chips": [], "payload": None, "error_types": [], "subsets": [],
                "names": [], "base": 0, "others": [], "flip_keys": [], "flips_cut": False, "flips_cap": 0}
    return template.render(**{**defaults, **context}, css=asset("style.css"), js=asset("explorer.js"), data_json=_data_json(data),
                           fmt=fmt, svg=render, version=__version__, max_chars=MAX_FIELD_CHARS)


def write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
