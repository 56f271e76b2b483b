#!/usr/bin/env python3
"""Finds import circles between the modules of each crate (`use` paths and
inline `crate::`/`super::` paths; `mod` declarations are not imports).
Prints every circle and exits 1 when there is one, 0 otherwise.

    deploy/lint/import-cycles.py [CRATE_SRC_DIR...]   (default: every crate)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRATES = ["proto/src", "agent/src", "controller/src", "cli/src", "tests/src"]


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            out[tuple(rel)] = os.path.join(dirpath, f)
    return out


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def resolve(path, here, mods):
    """The module a path names (its longest module prefix), or None."""
    parts = [p for p in re.split(r"::", path) if p]
    if not parts:
        return None
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] in ("super", "self"):
        base = here
        while parts and parts[0] in ("super", "self"):
            if parts.pop(0) == "super":
                base = base[:-1]
        rest = parts
    else:
        return None
    best = base if base in mods else None
    for i in range(1, len(rest) + 1):
        if base + tuple(rest[:i]) in mods:
            best = base + tuple(rest[:i])
    return best


def edges(mods):
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        text = strip(open(path, encoding="utf-8").read())
        paths = []
        for use in re.findall(r"\buse\s+([^;]+);", text):
            use = re.sub(r"\s+", "", use)
            # Expand one level of braces: a::{b, c::d} -> a::b, a::c::d.
            m = re.match(r"^(.*?)::\{(.*)\}$", use)
            if m:
                prefix, inner = m.groups()
                for item in re.split(r",(?![^{]*\})", inner):
                    paths.append(prefix + "::" + re.sub(r"[{}]", "", item))
            else:
                paths.append(use)
        paths += re.findall(r"\b((?:crate|super)(?:::\w+)+)", text)
        for p in paths:
            target = resolve(p.split(" as ")[0].replace("*", ""), mod, mods)
            if target is not None and target != mod:
                graph[mod].add(target)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    crates = sys.argv[1:] or [os.path.join(ROOT, c) for c in CRATES]
    found = 0
    for src in crates:
        graph = edges(modules(src))
        for comp in cycles(graph):
            found += 1
            names = sorted("::".join(m) or "(root)" for m in comp)
            print(f"{os.path.relpath(src, ROOT)}: import circle: {' <-> '.join(names)}")
            for m in sorted(comp):
                for w in sorted(graph[m] & set(comp)):
                    print(f"    {'::'.join(m) or '(root)'} uses {'::'.join(w) or '(root)'}")
    if found:
        print(f"{found} import circle(s)")
        return 1
    print(f"no import circles in {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
