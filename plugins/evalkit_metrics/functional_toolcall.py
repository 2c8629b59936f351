"""Tool-call metrics as plain functions: count (``_update``) and summarise (``_compute``).

A sample is a list of calls ``{"toolName": str, "paramList": {...}}``. A missing (or null /
empty) ``paramList`` means ``{}``; a ``None`` sample means "no calls" (what an unparseable
output becomes). No torch here: the counting is pure Python, batched over a whole ``update``
(see ``docs/design.md``). The ``Metric`` classes in :mod:`evalkit_metrics.toolcall` only store what these functions return.

Definitions (the tool-call scripts users already have, with the deviations documented where
they occur):

* **name level** — per tool, with multiplicity: ``label_count`` / ``pred_count`` are how often the
  tool occurs in the label / prediction lists, ``hits = min(label, pred)`` per sample.
  Optional ``__NEGATIVE__`` class for samples without calls: an empty label counts one
  ``__NEGATIVE__`` label, an empty prediction one prediction, both empty one hit.
* **param level** — every parameter of every call is a key ``"{toolName}-{param}"`` with a
  canonical value (:func:`canonical_value`); hits per key are the *multiset intersection* of the
  label's and the prediction's values for that key in the sample.
* ``tp = hits, fp = pred_count - hits, fn = label_count - hits``; precision / recall / F1 are 0
  where undefined; micro = from summed counts, macro = mean over every class seen.
* **exact match** — the prediction's calls equal the label's calls as a multiset.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Literal

NEGATIVE = "__NEGATIVE__"

Calls = Sequence[Mapping[str, Any]]
KeyCounts = dict[str, list[int]]  # key -> [tp, fp, fn]


def _make_json() -> Callable[[Any], str]:
    """Compact, key-sorted, non-ASCII-preserving JSON text. Uses CPython's C encoder directly
    when available: ``JSONEncoder.encode`` rebuilds it on every call, which dominated the cost
    of canonicalising list and dict parameter values."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - non-CPython
        return json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode
    # (markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys, allow_nan)
    encoder = c_make_encoder(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True)

    def dumps(value: Any) -> str:
        return "".join(encoder(value, 0))

    return dumps


_json = _make_json()


# ----------------------------------------------------------------------------- canonical values
STRUCTURED = "\x00"  # prefix of list/dict values: a string spelling JSON never equals the structure


def canonical_value(value: Any, *, parse_json_strings: bool = False) -> str:
    """A parameter value as comparable text.

    Strings as they are; every other scalar as ``str(v)`` like the seed (``True``, ``3``,
    ``2.5``, ``None`` — so ``3`` equals the string ``"3"``, as in the seed). Lists as a sorted
    multiset and dicts as key-sorted JSON, tagged as structures: the string
    ``'["a","b"]'`` is not the list ``["a","b"]`` (the seed compares a string as the string).
    ``parse_json_strings=True`` canonicalises strings that spell a JSON list/dict as that
    structure instead. Non-ASCII text stays readable.
    """
    kind = type(value)
    if kind is str:
        if parse_json_strings and value[:1] in ("[", "{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                return value
            if isinstance(parsed, (list, dict)):
                return canonical_value(parsed)
        return value
    if kind is list or kind is tuple:
        if all(type(item) is str for item in value):  # the common case, one encoder call
            return STRUCTURED + _json(sorted(value))
        return STRUCTURED + "[" + ",".join(sorted(_json(item) for item in value)) + "]"
    if kind is dict:
        return STRUCTURED + _json(value)
    return str(value)


def key_text(value: Any) -> str:
    """A value shown inside a key name (a composite key's first field): untagged text."""
    return value if type(value) is str else canonical_value(value).removeprefix(STRUCTURED)


Composite = dict[str, tuple[tuple[str, str, "tuple[Any, ...] | None"], ...]]


def _composite_spec(tool: str, spec: Any) -> tuple[str, str, tuple[Any, ...] | None]:
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"fields", "values"}
        fields_ = spec.get("fields")
        values = spec.get("values")
        if unknown or not (isinstance(fields_, (list, tuple)) and len(fields_) == 2 and all(isinstance(f, str) for f in fields_)):
            raise ValueError(f"composite_keys.{tool} must be {{fields: [param_a, param_b], values: [...]}}, got {spec!r}")
        if values is not None and not isinstance(values, (list, tuple)):
            raise ValueError(f"composite_keys.{tool}.values must be a list of values of {fields_[0]}, got {values!r}")
        return fields_[0], fields_[1], tuple(values) if values is not None else None
    if isinstance(spec, (list, tuple)) and len(spec) == 2 and all(isinstance(p, str) for p in spec):
        return spec[0], spec[1], None
    raise ValueError(f"composite_keys.{tool} must be [param_a, param_b] or {{fields: [param_a, param_b], values: [...]}}, got {spec!r}")


def normalize_composite_keys(composite_keys: Mapping[str, Any] | None) -> Composite:
    """``{tool: spec}`` -> ``{tool: ((a, b, values or None), ...)}``.

    A spec is ``[a, b]`` (every value of ``a``), ``{fields: [a, b], values: [v, ...]}`` (only
    those values of ``a``, as the seed does), or a list of such specs.
    """
    if not composite_keys:
        return {}
    if not isinstance(composite_keys, Mapping):
        raise ValueError(f"composite_keys must map a toolName to [param_a, param_b], got {type(composite_keys).__name__}")
    out: Composite = {}
    for tool, spec in composite_keys.items():
        if isinstance(spec, Mapping) or (isinstance(spec, (list, tuple)) and len(spec) == 2 and all(isinstance(p, str) for p in spec)):
            specs = [spec]
        elif isinstance(spec, (list, tuple)) and spec:
            specs = list(spec)
        else:
            raise ValueError(f"composite_keys.{tool} must be [param_a, param_b] or {{fields: [param_a, param_b], values: [...]}}, got {spec!r}")
        out[str(tool)] = tuple(_composite_spec(str(tool), one) for one in specs)
    return out


# ----------------------------------------------------------------------------- input checks
def _check_batch(preds: Sequence[Any], target: Sequence[Any]) -> None:
    if isinstance(preds, (str, bytes, Mapping)) or isinstance(target, (str, bytes, Mapping)):
        raise ValueError("preds and target must be lists of samples (each a list of tool calls)")
    if len(preds) != len(target):
        raise ValueError(f"preds and target differ in length: {len(preds)} predictions, {len(target)} labels")


def _as_calls(sample: Any) -> list[Any]:
    if type(sample) is list:
        return sample
    if sample is None:
        return []
    if isinstance(sample, tuple):
        return list(sample)
    raise TypeError("not a list")


def _explain(preds: Sequence[Any], target: Sequence[Any]) -> None:
    """Find the malformed sample after the fast path failed and raise a clear ``ValueError``."""
    for side, samples in (("target", target), ("preds", preds)):
        for i, sample in enumerate(samples):
            if not (sample is None or isinstance(sample, (list, tuple))):
                raise ValueError(f"{side}[{i}] must be a list of tool calls, got {type(sample).__name__}: {sample!r:.80}")
            for j, call in enumerate(sample or ()):
                if not isinstance(call, Mapping) or "toolName" not in call:
                    raise ValueError(f"{side}[{i}][{j}] must be an object with 'toolName', got {call!r:.80}")
                try:
                    hash(call["toolName"])
                except TypeError:
                    raise ValueError(f"{side}[{i}][{j}].toolName must be a string, got {call['toolName']!r:.80}") from None
                params = call.get("paramList")
                if params and not isinstance(params, Mapping):
                    raise ValueError(f"{side}[{i}][{j}].paramList must be an object, got {params!r:.80}")


# ----------------------------------------------------------------------------- tool F1
def _intersection(a: list[Any], b: list[Any]) -> list[Any]:
    """Multiset intersection; plain list scans beat two Counters for the usual handful of items."""
    if len(a) * len(b) > 64:
        return list((Counter(a) & Counter(b)).elements())
    rest = list(b)
    out = []
    for x in a:
        if x in rest:
            rest.remove(x)
            out.append(x)
    return out


def _name_level(preds: Sequence[Any], target: Sequence[Any], include_negative: bool) -> tuple[Counter, Counter, Counter, list[int]]:
    labels: list[Any] = []
    predicted: list[Any] = []
    hits: list[Any] = []
    neg = [0, 0, 0]  # label empty, pred empty, both
    same: list[Any] = []  # names of samples predicted exactly: label = pred = hit
    for p, t in zip(preds, target):
        ln = [c["toolName"] for c in (t if type(t) is list else _as_calls(t))]
        pn = [c["toolName"] for c in (p if type(p) is list else _as_calls(p))]
        if ln == pn:
            same += ln
            if include_negative and not ln:
                neg[0] += 1
                neg[1] += 1
                neg[2] += 1
            continue
        labels += ln
        predicted += pn
        if ln and pn:
            if len(ln) == 1:
                if ln[0] in pn:
                    hits.append(ln[0])
            elif len(pn) == 1:
                if pn[0] in ln:
                    hits.append(pn[0])
            else:
                hits += _intersection(ln, pn)
        if include_negative:
            if not ln:
                neg[0] += 1
                if not pn:
                    neg[2] += 1
            if not pn:
                neg[1] += 1
    same_c = Counter(same)
    return Counter(labels) + same_c, Counter(predicted) + same_c, Counter(hits) + same_c, neg


def _param_pairs(calls: list[Any], composite: Composite, parse_json: bool = False) -> tuple[list[tuple[str, str]], bool]:
    """The ``(key, canonical value)`` pairs of a sample's calls, and whether every tool name and
    value was a string (then any sample ``==`` to this one has exactly the same pairs — see
    ``_param_level``)."""
    out: list[tuple[str, str]] = []
    only_str = True
    for call in calls:
        params = call.get("paramList")
        name = call["toolName"]
        if not params:
            continue
        if type(name) is not str:
            only_str = False
        for k, v in params.items():
            if type(v) is str and not parse_json:
                out.append((f"{name}-{k}", v))
            else:
                only_str = False
                out.append((f"{name}-{k}", canonical_value(v, parse_json_strings=parse_json)))
        if composite:
            for a, b, values in composite.get(name, ()):
                if a in params and b in params:
                    va = params[a]
                    if values is not None and not any(type(va) is type(v) and va == v for v in values):
                        continue
                    vb = params[b]
                    out.append((f"{name}-{a}-{key_text(va)}", vb if type(vb) is str and not parse_json else canonical_value(vb, parse_json_strings=parse_json)))
    return out, only_str


def _by_key(pair_counts: Counter) -> Counter:
    out: Counter = Counter()
    for (key, _value), n in pair_counts.items():
        out[key] += n
    return out


def _param_level(
    preds: Sequence[Any], target: Sequence[Any], include_negative: bool, composite: Composite, parse_json: bool = False
) -> tuple[Counter, Counter, Counter, list[int]]:
    labels: list[tuple[str, str]] = []
    predicted: list[tuple[str, str]] = []
    hits: list[tuple[str, str]] = []
    same: list[tuple[str, str]] = []  # pairs of samples predicted exactly: label = pred = hit
    neg = [0, 0, 0]
    for p, t in zip(preds, target):
        tc = t if type(t) is list else _as_calls(t)
        pc = p if type(p) is list else _as_calls(p)
        lp, only_str = _param_pairs(tc, composite, parse_json)
        # Python's == says 1 == 1.0 == True, canonical text does not; so an equal prediction
        # may reuse the label's pairs only when all of them are strings (equal only to strings).
        if only_str and tc == pc:
            same += lp
        else:
            pp = _param_pairs(pc, composite, parse_json)[0]
            labels += lp
            predicted += pp
            if lp == pp:
                hits += lp
            elif lp and pp:
                hits += _intersection(lp, pp)
        if include_negative:
            if not tc:
                neg[0] += 1
                if not pc:
                    neg[2] += 1
            if not pc:
                neg[1] += 1
    same_c = Counter(same)
    return (
        _by_key(Counter(labels) + same_c),
        _by_key(Counter(predicted) + same_c),
        _by_key(Counter(hits) + same_c),
        neg,
    )


def _tool_f1_update(
    preds: Sequence[Any],
    target: Sequence[Any],
    level: Literal["name", "param"] = "name",
    include_negative: bool = False,
    composite_keys: Mapping[str, Any] | None = None,
    parse_json_strings: bool = False,
) -> KeyCounts:
    """Count one batch: ``{key: [tp, fp, fn]}`` (tool names, or ``tool-param`` keys)."""
    _check_batch(preds, target)
    preds, target = seed_calls(preds), seed_calls(target)
    try:
        if level == "name":
            label_c, pred_c, hit_c, neg = _name_level(preds, target, include_negative)
        elif level == "param":
            composite = composite_keys if _is_normalized(composite_keys) else normalize_composite_keys(composite_keys)
            label_c, pred_c, hit_c, neg = _param_level(preds, target, include_negative, composite, parse_json_strings)  # type: ignore[arg-type]
        else:
            raise ValueError(f"level must be 'name' or 'param', got {level!r}")
    except (TypeError, KeyError, AttributeError):
        _explain(preds, target)
        raise
    out: KeyCounts = {}
    for key in label_c.keys() | pred_c.keys():
        h = hit_c.get(key, 0)
        out[key] = [h, pred_c.get(key, 0) - h, label_c.get(key, 0) - h]
    if include_negative and (neg[0] or neg[1]):
        row = [neg[2], neg[1] - neg[2], neg[0] - neg[2]]
        if NEGATIVE in out:  # a tool literally named __NEGATIVE__ shares the class
            out[NEGATIVE] = [a + b for a, b in zip(out[NEGATIVE], row)]
        else:
            out[NEGATIVE] = row
    return out


def _is_normalized(composite: Any) -> bool:
    return isinstance(composite, dict) and all(
        isinstance(v, tuple) and all(isinstance(p, tuple) and len(p) == 3 for p in v) for v in composite.values()
    )


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def _tool_f1_compute(counts: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """``{key: [tp, fp, fn]}`` -> micro / macro / per-key P, R, F1 (plain Python numbers)."""
    per_tool: dict[str, dict[str, Any]] = {}
    total = [0, 0, 0]
    sums = [0.0, 0.0, 0.0]
    for key in sorted(counts):
        tp, fp, fn = (int(c) for c in counts[key][:3])
        p, r, f = _prf(tp, fp, fn)
        per_tool[key] = {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}
        total[0] += tp
        total[1] += fp
        total[2] += fn
        sums[0] += p
        sums[1] += r
        sums[2] += f
    mp, mr, mf = _prf(*total)
    n = len(per_tool)
    macro = [s / n for s in sums] if n else [0.0, 0.0, 0.0]
    return {
        "micro": {"precision": mp, "recall": mr, "f1": mf},
        "macro": {"precision": macro[0], "recall": macro[1], "f1": macro[2]},
        "per_tool": per_tool,
    }


def tool_call_f1(
    preds: Sequence[Any],
    target: Sequence[Any],
    level: Literal["name", "param"] = "name",
    include_negative: bool = False,
    composite_keys: Mapping[str, Any] | None = None,
    parse_json_strings: bool = False,
) -> dict[str, Any]:
    """Functional twin of :class:`evalkit_metrics.ToolCallF1` (same arguments, same result)."""
    return _tool_f1_compute(_tool_f1_update(preds, target, level, include_negative, composite_keys, parse_json_strings))


# ----------------------------------------------------------------------------- exact match
def _normalized_calls(calls: Iterable[Any]) -> list[tuple[Any, Any]]:
    return [(c["toolName"], c.get("paramList") or {}) for c in calls]


def _same_multiset(a: list[Any], b: list[Any]) -> bool:
    """Multiset equality by ``==`` (greedy matching is exact: ``==`` is an equivalence here)."""
    rest = list(b)
    for x in a:
        for j, y in enumerate(rest):
            if x == y:
                del rest[j]
                break
        else:
            return False
    return True


BUCKETS = ("single", "multi", "empty", "all")


def _exact_match_verdicts(preds: Sequence[Any], target: Sequence[Any]) -> list[tuple[int, bool]]:
    """Per sample: ``(bucket, correct)`` with bucket 0 single, 1 multi, 2 empty label."""
    _check_batch(preds, target)
    preds, target = seed_calls(preds), seed_calls(target)
    out: list[tuple[int, bool]] = []
    try:
        for p, t in zip(preds, target):
            tc = _as_calls(t)
            pc = _as_calls(p)
            for c in tc:
                c["toolName"]  # noqa: B018 - validates the label even on the fast path
            n = len(tc)
            if tc == pc:
                ok = True
            else:
                for c in pc:
                    c["toolName"]  # noqa: B018 - validates the prediction
                ok = n == len(pc) and _same_multiset(_normalized_calls(tc), _normalized_calls(pc))
            out.append((0 if n == 1 else (1 if n > 1 else 2), ok))
    except (TypeError, KeyError, AttributeError):
        _explain(preds, target)
        raise
    return out


def _exact_match_update(preds: Sequence[Any], target: Sequence[Any]) -> tuple[list[int], list[int]]:
    """Count one batch: ``(correct, total)``, each ``[single, multi, empty, all]``."""
    correct = [0, 0, 0, 0]
    total = [0, 0, 0, 0]
    for bucket, ok in _exact_match_verdicts(preds, target):
        total[bucket] += 1
        correct[bucket] += ok
        total[3] += 1
        correct[3] += ok
    return correct, total


def _exact_match_compute(correct: Sequence[int], total: Sequence[int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(BUCKETS):
        c, n = int(correct[i]), int(total[i])
        out[name] = {"correct": c, "total": n, "accuracy": c / n if n else 0.0}
    return out


def tool_call_exact_match(preds: Sequence[Any], target: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Functional twin of :class:`evalkit_metrics.ToolCallExactMatch`."""
    return _exact_match_compute(*_exact_match_update(preds, target))


def tool_call_exact_match_per_sample(preds: Sequence[Any], target: Sequence[Any]) -> list[bool]:
    """Per-sample verdicts of :func:`tool_call_exact_match` (what ``scores`` records hold)."""
    return [ok for _, ok in _exact_match_verdicts(preds, target)]


# ----------------------------------------------------------------------------- call dialects
def _seed_call(call: Any) -> Any:
    """``{name, arguments: dict}`` (the normalised call of function-calling parsers) ->
    ``{toolName, paramList}``; seed calls and anything else pass unchanged."""
    if isinstance(call, Mapping) and "toolName" not in call and "name" in call:
        args = call.get("arguments")
        return {"toolName": call["name"], "paramList": args if isinstance(args, Mapping) else (args or {})}
    return call


def seed_calls(samples: Sequence[Any]) -> Sequence[Any]:
    """Samples of normalised calls in the seed's dialect (a no-op, without copies, for seed data)."""
    out: list[Any] | None = None
    for i, sample in enumerate(samples):
        if type(sample) is list and sample and isinstance(sample[0], Mapping) and "toolName" not in sample[0] and "name" in sample[0]:
            if out is None:
                out = list(samples)
            out[i] = [_seed_call(c) for c in sample]
    return samples if out is None else out
