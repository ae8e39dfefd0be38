#!/usr/bin/env python3
"""Rewrites the table in docs/events.md from the catalogue in crates/log/src/event.rs."""
import re, pathlib
root = pathlib.Path(__file__).resolve().parent.parent
src = (root / "crates/log/src/event.rs").read_text()
rows = re.findall(r'^\s+\w+ => "([a-z_]+)", (\w+), "((?:[^"\\]|\\.)*)";$', src, re.M)
assert rows, "no catalogue rows found"
table = ["| event | level | meaning |", "| --- | --- | --- |"]
table += [f"| `{n}` | {l.upper()} | {d.replace(chr(92) + chr(34), chr(34))} |" for n, l, d in rows]
doc = root / "docs/events.md"
lines = doc.read_text().split("\n")
start = lines.index("| event | level | meaning |")
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
doc.write_text("\n".join(lines[:start] + table + lines[end:]))
print(f"{len(rows)} events")
