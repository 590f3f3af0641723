#!/usr/bin/env python3
"""Fails when a module of runtime/src reaches itself through others.

A module is a top-level file or folder of runtime/src; it uses another when
its code (comments and its `#[cfg(test)] mod tests` left out) names
`crate::<other>`. The layers point down only: the ledger and the handler at
the ground, then what a finished handler hands on, the outputs, the run that
dispatches to them, and the integrations on top. Prints each cycle found.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "runtime/src"
files = {}
for directory, _, names in os.walk(root):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(directory, name)
            top = os.path.relpath(path, root).split(os.sep)[0]
            files.setdefault(top[:-3] if top.endswith(".rs") else top, []).append(path)

uses = {module: set() for module in files}
for module, paths in files.items():
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
        named = set(re.findall(r"crate::(\w+)", text))
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            named |= {part.strip().split("::")[0] for part in group.split(",")}
        uses[module] |= {m for m in named if m in files and m not in (module, "lib")}

# Depth-first search for a path back to where it started.
cycles = set()
def walk(start, module, path):
    for used in sorted(uses[module]):
        if used == start:
            cycles.add(tuple(path + [start]))
        elif used not in path and used > start:
            walk(start, used, path + [used])

for module in sorted(uses):
    walk(module, module, [module])

for cycle in sorted(cycles):
    print("cycle: " + " -> ".join(cycle), file=sys.stderr)
sys.exit(1 if cycles else 0)
