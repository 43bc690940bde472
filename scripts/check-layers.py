#!/usr/bin/env python3
"""Checks the layering ARCHITECTURE.md describes, from the source text (CI runs it; so can anyone).

1. No import circles among the files of each crate: every path to another module of the same crate
   (`use crate::…`, `crate::a::b::f()` inline, `super::…`, `self::…`, a child module by name) is an edge
   from the file that writes it to the file of the deepest module it names; test modules (`#[cfg(test)]`)
   are left out, since they may reach anywhere.
2. usher-server's services import no HTTP: no file under src/service/ names axum, axum_extra, tower,
   tower_http, hyper or http types, and none imports the adapters (crate::http, crate::console, the CLI).

Exits 1 and names each circle or import that breaks a rule.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["usher-server", "usher-core", "usher-store", "usher-cdn", "usher-geo", "usher-load"]
ADAPTERS = {"http", "console", "cli"}
HTTP_CRATES = re.compile(r"\b(axum|axum_extra|tower|tower_http|hyper|http_body_util)::")


def strip_comments_and_tests(text: str) -> str:
    """Drops comments, string contents and `#[cfg(test)]` items (brace-matched)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i)
            i = n if j < 0 else j + 2
            continue
        if text.startswith("#[cfg(test)]", i):
            # skip the attribute and the item it guards: up to the matching `}` or the next `;`
            j = i + len("#[cfg(test)]")
            depth = 0
            while j < n:
                c = text[j]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        j += 1
                        break
                elif c == ";" and depth == 0:
                    j += 1
                    break
                j += 1
            i = j
            continue
        if text[i] == '"' and not re.match(r"[A-Za-z0-9_']", text[i - 1] if i else " "):
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def module_files(src: Path) -> dict[tuple[str, ...], Path]:
    """Maps each module path (() for the crate root) to its file."""
    mods: dict[tuple[str, ...], Path] = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = tuple(rel.parts)
        if parts in (("lib",), ("main",)):
            mods.setdefault((), f) if parts == ("lib",) else None
            continue
        if parts[-1] == "mod":
            parts = parts[:-1]
        mods[parts] = f
    return mods


def expand_use(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` → [`a::b`, `a::c::d`, `a::c::e`] (renames and globs kept as written)."""
    tree = tree.strip()
    if "{" not in tree:
        return [tree.split(" as ")[0].strip()]
    i = tree.index("{")
    prefix, body = tree[:i], tree[i + 1 : tree.rindex("}")]
    items, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    items.append(cur)
    return [p for it in items if it.strip() for p in expand_use(prefix + it.strip())]


def resolve(segments: list[str], here: tuple[str, ...], mods, reexports=None) -> tuple[str, ...] | None:
    """The deepest module of this crate that `segments` (as written in module `here`) names; a name a
    module re-exports (`pub use child::Name`) is followed to the module that defines it."""
    if not segments:
        return None
    head, rest = segments[0], segments[1:]
    if head == "crate":
        base = ()
    elif head == "super":
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif head == "self":
        base = here
    elif here + (head,) in mods:
        base = here + (head,)
    else:
        return None
    path = base
    for i, seg in enumerate(rest):
        if path + (seg,) in mods:
            path = path + (seg,)
            continue
        if reexports and seg in reexports.get(path, {}):
            return reexports[path][seg]
        break
    return path


def use_paths(text: str) -> list[tuple[bool, str]]:
    """Every `use` path (with whether it is `pub use`) and every inline `crate::`/`super::` path."""
    out = []
    for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text):
        out.extend((bool(m.group(1)), p) for p in expand_use(m.group(2)))
    rest = re.sub(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", "", text)
    out.extend((False, p) for p in re.findall(r"\b(?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+", rest))
    return out


def split(p: str) -> list[str]:
    return [s for s in p.replace(" ", "").split("::") if s]


def reexports_of(texts: dict, mods) -> dict:
    """For each module, the names it re-exports with `pub use` and the module each comes from."""
    out: dict = {}
    for m, text in texts.items():
        for public, p in use_paths(text):
            segs = split(p)
            if not public or not segs or segs[-1] == "*":
                continue
            target = resolve(segs[:-1] + ["_"], m, mods)
            if target is not None and target != m:
                out.setdefault(m, {})[segs[-1]] = target
    return out


def edges_of(text: str, here: tuple[str, ...], mods, reexports) -> set[tuple[str, ...]]:
    found = set()
    for _, p in use_paths(text):
        target = resolve(split(p), here, mods, reexports)
        if target is not None and target != here:
            found.add(target)
    return found


def circles(graph: dict) -> list[list]:
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def name(m: tuple[str, ...]) -> str:
    return "crate" if not m else "::".join(m)


def main() -> int:
    problems: list[str] = []
    for crate in CRATES:
        src = ROOT / "crates" / crate / "src"
        if not src.is_dir():
            continue
        mods = module_files(src)
        texts = {m: strip_comments_and_tests(f.read_text()) for m, f in mods.items()}
        reexports = reexports_of(texts, mods)
        graph = {m: edges_of(texts[m], m, mods, reexports) for m in mods}
        for comp in circles(graph):
            cycle = sorted(name(m) for m in comp)
            problems.append(f"{crate}: import circle among {', '.join(cycle)}")
        if crate == "usher-server":
            for m, f in mods.items():
                if m[:1] != ("service",):
                    continue
                text = texts[m]
                rel = f.relative_to(ROOT)
                for hit in sorted(set(HTTP_CRATES.findall(text))):
                    problems.append(f"{rel}: a service uses `{hit}` (HTTP belongs to the adapters)")
                for t in graph[m]:
                    if t[:1] and t[0] in ADAPTERS:
                        problems.append(f"{rel}: a service imports the adapter `crate::{name(t)}`")
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)")
        return 1
    print("check-layers: no import circles; services import no HTTP and no adapter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
