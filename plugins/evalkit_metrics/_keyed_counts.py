"""Integer counts keyed by open-ended strings, held in tensor states torchmetrics can sync.

Tool names (and ``tool-param`` keys) are not known in advance, so a fixed-size count tensor
cannot hold them. Instead the keys travel *with* their counts as three ``cat`` list states:

* ``<prefix>_names``   uint8   the UTF-8 bytes of the keys, concatenated;
* ``<prefix>_lengths`` int64   the byte length of each key;
* ``<prefix>_counts``  int64   ``width`` counts per key, flattened.

Why bytes rather than, say, 64-bit hashes plus a side table of names: every piece of the
state is then an ordinary tensor, so torchmetrics' own machinery works unchanged — DDP
``all_gather`` (uneven sizes are padded by torchmetrics), ``merge_state`` (list concatenation)
and ``state_dict``/``load_state_dict`` (persistent states) — there is no collision risk and
no extra ``all_gather_object`` round. A key may occur several times across entries (one entry
per ``update`` call, per rank or per merged shard); :func:`decode` sums them. The owning metric
compacts the lists when they grow, so memory is bounded by the number of distinct keys, not by
the number of updates.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

# Compact the list states once they hold this many update entries.
COMPACT_AFTER = 64


def encode(counts: Mapping[Any, Sequence[int]], width: int) -> tuple[Tensor, Tensor, Tensor]:
    """``{key: [c0, c1, ...]}`` -> (name bytes, byte lengths, flat counts). Keys become ``str``."""
    merged: dict[str, list[int]] = {}
    for key, row in counts.items():
        name = key if isinstance(key, str) else str(key)
        acc = merged.get(name)
        if acc is None:
            merged[name] = [int(c) for c in row]
        else:
            for i in range(width):
                acc[i] += int(row[i])
    encoded = [name.encode("utf-8") for name in merged]
    blob = b"".join(encoded)
    names = torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob else torch.empty(0, dtype=torch.uint8)
    lengths = torch.tensor([len(b) for b in encoded], dtype=torch.int64)
    flat = [c for row in merged.values() for c in row]
    values = torch.tensor(flat, dtype=torch.int64) if flat else torch.empty(0, dtype=torch.int64)
    return names, lengths, values


def _cat(state: Tensor | list[Tensor], dtype: torch.dtype) -> Tensor:
    if isinstance(state, Tensor):
        return state.reshape(-1)
    if not state:
        return torch.empty(0, dtype=dtype)
    return torch.cat([t.reshape(-1) for t in state])


def decode(names: Tensor | list[Tensor], lengths: Tensor | list[Tensor], values: Tensor | list[Tensor], width: int) -> dict[str, list[int]]:
    """Inverse of :func:`encode` over any number of concatenated entries, summing repeats."""
    raw = _cat(names, torch.uint8).cpu().numpy().tobytes()
    lens = _cat(lengths, torch.int64).tolist()
    flat = _cat(values, torch.int64).tolist()
    if len(flat) != width * len(lens) or sum(lens) != len(raw):
        raise ValueError(
            f"corrupt keyed-count state: {len(lens)} keys, {len(raw)} name bytes, {len(flat)} counts (width {width})"
        )
    out: dict[str, list[int]] = {}
    start = 0
    for i, end in enumerate(accumulate(lens)):
        name = raw[start:end].decode("utf-8")
        start = end
        row = flat[i * width : (i + 1) * width]
        acc = out.get(name)
        if acc is None:
            out[name] = row
        else:
            for j in range(width):
                acc[j] += row[j]
    return out


class KeyedCountsMixin:
    """Adds keyed-count states to a ``torchmetrics.Metric`` (call :meth:`_add_keyed_states`)."""

    _keyed_prefix = "keyed"
    _keyed_width = 3

    def _add_keyed_states(self) -> None:
        p = self._keyed_prefix
        self.add_state(f"{p}_names", default=[], dist_reduce_fx="cat", persistent=True)  # type: ignore[attr-defined]
        self.add_state(f"{p}_lengths", default=[], dist_reduce_fx="cat", persistent=True)  # type: ignore[attr-defined]
        self.add_state(f"{p}_counts", default=[], dist_reduce_fx="cat", persistent=True)  # type: ignore[attr-defined]

    def _keyed_dtypes(self) -> dict[str, torch.dtype]:
        p = self._keyed_prefix
        return {f"{p}_names": torch.uint8, f"{p}_lengths": torch.int64, f"{p}_counts": torch.int64}

    def _append_counts(self, counts: Mapping[Any, Sequence[int]]) -> None:
        if not counts:
            return
        p = self._keyed_prefix
        names, lengths, values = encode(counts, self._keyed_width)
        device = getattr(self, "device", None)
        if device is not None and device.type != "cpu":
            names, lengths, values = names.to(device), lengths.to(device), values.to(device)
        name_list = getattr(self, f"{p}_names")
        if not isinstance(name_list, list):  # a synced (concatenated) state: keep it as one entry
            for attr in self._keyed_dtypes():
                setattr(self, attr, [getattr(self, attr)])
            name_list = getattr(self, f"{p}_names")
        name_list.append(names)
        getattr(self, f"{p}_lengths").append(lengths)
        getattr(self, f"{p}_counts").append(values)
        if len(name_list) > COMPACT_AFTER:
            self._compact_counts()

    def _compact_counts(self) -> None:
        """Replace all entries by one entry per distinct key (bounded memory for long streams)."""
        p = self._keyed_prefix
        merged = self._read_counts()
        names, lengths, values = encode(merged, self._keyed_width)
        device = getattr(self, "device", None)
        if device is not None and device.type != "cpu":
            names, lengths, values = names.to(device), lengths.to(device), values.to(device)
        setattr(self, f"{p}_names", [names])
        setattr(self, f"{p}_lengths", [lengths])
        setattr(self, f"{p}_counts", [values])

    def _read_counts(self) -> dict[str, list[int]]:
        p = self._keyed_prefix
        return decode(
            getattr(self, f"{p}_names"), getattr(self, f"{p}_lengths"), getattr(self, f"{p}_counts"), self._keyed_width
        )

    def _sync_dist(self, dist_sync_fn: Any = None, process_group: Any = None) -> None:
        # torchmetrics stands in ``torch.tensor([], dtype=self.dtype)`` (float32) for an empty
        # list state on a rank that saw no data; all_gather then mixes float32 with our uint8 /
        # int64 tensors. Give empty states their real dtype first (the pre-sync state is cached
        # by ``sync()`` before this runs, so ``unsync()`` restores the original lists).
        device = getattr(self, "device", torch.device("cpu"))
        for attr, dtype in self._keyed_dtypes().items():
            state = getattr(self, attr)
            if isinstance(state, list) and not state:
                setattr(self, attr, [torch.empty(0, dtype=dtype, device=device)])
        if dist_sync_fn is None:
            super()._sync_dist(process_group=process_group)  # type: ignore[misc]
        else:
            super()._sync_dist(dist_sync_fn, process_group=process_group)  # type: ignore[misc]
