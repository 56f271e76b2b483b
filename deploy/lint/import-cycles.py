#!/usr/bin/env python3
"""Finds import circles between the rooms of each crate.

A room is a module: a file, or a folder with everything below it. An import
is any path that names another module: in a `use` (braces expanded at any
depth) or inline, starting with `crate::`, `super::`, `self::` or a bare
child module's name (`use child::x`, Rust's own way to name a child). An
import made anywhere inside a folder is an import by that folder too, as a
reader counts it: `ssh/known_hosts/mod.rs` using `workspace` means `ssh`
uses `workspace`. A module and its own ancestors or descendants never count
as importing each other (a parent declares and uses its children; a child
may use its parent's items). `mod` declarations are not imports.

Prints every circle, with the imports that make it, and exits 1 when there
is one, 0 otherwise.

    deploy/lint/import-cycles.py [CRATE_SRC_DIR...]   (default: every crate)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRATES = ["proto/src", "agent/src", "controller/src", "server/src", "cli/src", "tests/src"]


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
    """The text without comments, string literals and char literals."""
    text = re.sub(r"/\*(?:.|\n)*?\*/", "", text)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'\bb?r(#+)"(?:.|\n)*?"\1', '""', text)
    text = re.sub(r'\bb?r"[^"]*"', '""', text)
    text = re.sub(r"b?'(?:\\.|[^'\\\n])'", "' '", text)
    return re.sub(r'b?"(?:\\.|[^"\\])*"', '""', text)


def expand(use):
    """Every path of one `use` tree: `a::{b, c::{d, self}}` -> a::b, a::c::d, a::c."""
    use = re.sub(r"\s*([{},:])\s*", r"\1", use.strip())
    m = re.match(r"^(.*?)\{(.*)\}$", use)
    if not m:
        return [re.sub(r"(::)?self$", "", re.sub(r"\s+as\s+.*$", "", use))]
    prefix, inner = m.groups()
    items, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in filter(None, items):
        if item == "self":
            out.append(prefix.rstrip(":"))
        else:
            out += expand(prefix + item)
    return out


def resolve(path, here, mods):
    """The module a path names (its longest module prefix), or None."""
    path = re.sub(r"\s+as\s+.*$", "", path).replace("*", "")
    parts = [p for p in path.split("::") if p]
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
    elif here + (parts[0],) in mods:
        base, rest = here, parts
    else:
        return None
    best = base if base in mods else None
    for i in range(1, len(rest) + 1):
        if base + tuple(rest[:i]) in mods:
            best = base + tuple(rest[:i])
    return best


def related(a, b):
    """Whether one of the two modules is the other or contains it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def imports(mods):
    """Module -> the modules its own file names (before rooms are counted)."""
    out = {m: set() for m in mods}
    for mod, path in mods.items():
        text = strip(open(path, encoding="utf-8").read())
        paths = []
        for use in re.findall(r"\buse\s+([^;]+);", text):
            paths += expand(use)
        text = re.sub(r"\buse\s+[^;]+;", "", text)
        paths += re.findall(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", text)
        children = {m[-1] for m in mods if len(m) == len(mod) + 1 and m[:-1] == mod}
        for name in children:
            paths += re.findall(r"(?<![\w:])(%s(?:::\w+)+)" % re.escape(name), text)
        for p in paths:
            target = resolve(p, mod, mods)
            if target is not None and not related(target, mod):
                out[mod].add(target)
    return out


def rooms(direct):
    """The import graph between rooms: each import also counts for every
    folder that holds its importer and for every folder that holds what it
    names, except between a module and its own ancestors or descendants.
    Each edge keeps one direct import that makes it, to show."""
    graph, why = {m: set() for m in direct}, {}
    for src, targets in direct.items():
        for dst in targets:
            for i in range(1, len(src) + 1):
                for j in range(1, len(dst) + 1):
                    a, b = src[:i], dst[:j]
                    if a in graph and b in graph and not related(a, b):
                        graph[a].add(b)
                        why.setdefault((a, b), (src, dst))
    return graph, why


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def name(m):
    return "::".join(m) or "(root)"


def check(src, out=sys.stdout):
    """Prints the circles of one crate; returns how many."""
    graph, why = rooms(imports(modules(src)))
    found = 0
    for comp in cycles(graph):
        found += 1
        members = set(comp)
        # Show the outermost rooms of the circle: inner ones repeat them.
        top = sorted(m for m in members if not any(o != m and related(o, m) and len(o) < len(m) for o in members))
        print(f"{os.path.relpath(src, ROOT)}: import circle: {' <-> '.join(name(m) for m in top)}", file=out)
        for m in top:
            for w in sorted(graph[m] & set(top)):
                s, d = why[(m, w)]
                print(f"    {name(m)} uses {name(w)} ({name(s)} names {name(d)})", file=out)
    return found


def main():
    crates = sys.argv[1:] or [os.path.join(ROOT, c) for c in CRATES]
    found = sum(check(src) for src in crates)
    if found:
        print(f"{found} import circle(s)")
        return 1
    print(f"no import circles in {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
