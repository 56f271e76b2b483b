#!/usr/bin/env python3
"""Checks the sizes the code keeps to: no function outside tests longer than
MAX_FN lines (a signature's first line to its closing brace), and at most
MAX_TOP entries (files and folders) at the top of each crate's src/ named
in ROOMED.
Prints each breach and exits 1 when there is one.

    deploy/lint/sizes.py [--list N]   (--list: the N longest functions)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRATES = ["proto/src", "agent/src", "controller/src", "server/src", "cli/src", "tests/src"]
MAX_FN = 120
MAX_TOP = 15
# The crates whose top level is held to MAX_TOP (the controller's 39
# entries are the next to group).
ROOMED = ["agent/src"]
FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def functions(path):
    """(name, first line, length) of every function outside test modules."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i, test_depth = [], 0, None
    depth = 0
    while i < len(lines):
        line = lines[i]
        code = re.sub(r"//.*", "", line)
        if test_depth is None and re.match(r"\s*#\[cfg\(test\)\]", line):
            # The next item is test-only: skip it whole.
            j = i + 1
            while j < len(lines) and not re.search(r"[{;]\s*$", re.sub(r"//.*", "", lines[j])):
                j += 1
            if j < len(lines) and lines[j].rstrip().endswith("{"):
                test_depth = depth
                depth += 1
                i = j + 1
                continue
        m = FN.match(code)
        if m and test_depth is None:
            indent = len(m.group(1))
            j = i
            while j < len(lines) and not re.search(r"[{;]\s*$", re.sub(r"//.*", "", lines[j])):
                j += 1
            if j < len(lines) and lines[j].rstrip().endswith("{"):
                k = j + 1
                close = " " * indent + "}"
                while k < len(lines) and lines[k].rstrip() != close:
                    k += 1
                out.append((m.group(2), i + 1, k - i + 1))
        depth += code.count("{") - code.count("}")
        if test_depth is not None and depth <= test_depth:
            test_depth = None
        i += 1
    return out


def main():
    listing = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--list" else 0
    found, all_fns = [], []
    for crate in CRATES:
        src = os.path.join(ROOT, crate)
        top = [e for e in os.listdir(src) if e.endswith(".rs") or os.path.isdir(os.path.join(src, e))]
        if crate in ROOMED and len(top) > MAX_TOP:
            found.append(f"{crate}: {len(top)} entries at the top (at most {MAX_TOP}): group them in folders by responsibility")
        for dirpath, _, files in os.walk(src):
            for f in files:
                if not f.endswith(".rs") or f == "tests.rs" or "/tests/" in dirpath + "/":
                    continue
                path = os.path.join(dirpath, f)
                for name, line, length in functions(path):
                    rel = os.path.relpath(path, ROOT)
                    all_fns.append((length, f"{rel}:{line} {name}"))
                    if length > MAX_FN:
                        found.append(f"{rel}:{line}: fn {name} is {length} lines (at most {MAX_FN}): split it into named steps")
    if listing:
        for length, where in sorted(all_fns, reverse=True)[:listing]:
            print(f"{length:5} {where}")
        return 0
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} size breach(es)")
        return 1
    print(f"sizes kept: functions at most {MAX_FN} lines, at most {MAX_TOP} entries at a crate's top")
    return 0


if __name__ == "__main__":
    sys.exit(main())
