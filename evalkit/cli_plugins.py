"""``evalkit-plugins``: list discovered plugins, their distribution, version, registrations and
how long each took to import (every evalkit command pays that time)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evalkit-plugins", description="List evalkit plugins and what they register.")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)

    from evalkit.errors import EvalKitError
    from evalkit.plugins import default_plugin_set
    from evalkit.registry import Registry

    plugin_set = default_plugin_set()
    try:
        registry = Registry(plugin_set)
    except EvalKitError as exc:
        sys.stderr.write(f"evalkit-plugins: error: {exc}\n")
        return 2
    rows = []
    for info in plugin_set.infos:
        rows.append(
            {
                "name": info.name,
                "module": info.module,
                "distribution": info.distribution,
                "version": info.version,
                "builtin": info.builtin,
                "hooks": info.hooks,
                "registers": registry.provided_by(info.name),
                "error": info.error,
                "load_s": round(info.load_s, 4),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="evalkit plugins")
    for col in ("plugin", "distribution", "version", "registers", "load", "status"):
        table.add_column(col, justify="right" if col == "load" else "left")
    for row in rows:
        registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in row["registers"].items()) or "-"
        status = f"[red]failed: {row['error']}[/red]" if row["error"] else ("built-in" if row["builtin"] else "third-party")
        table.add_row(row["name"], row["distribution"], row["version"], registers, _ms(row["load_s"]), status)
    console = Console()
    console.print(table)
    total = sum(r["load_s"] for r in rows)
    slow = max(rows, key=lambda r: r["load_s"], default=None)
    if slow is not None:
        console.print(f"plugins imported in {_ms(total)} (slowest: {slow['name']}, {_ms(slow['load_s'])})", highlight=False)
        console.print("a plugin should import heavy libraries (torch, ...) inside its factories", highlight=False)
    return 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
