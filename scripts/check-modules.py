#!/usr/bin/env python3
"""No circles between the modules of a crate, and no long files (make
test: check-modules).

For each library crate under rust/ (src/lib.rs and the module files it
declares), list which module names which other one in its code: a `use` or a
path through `crate::`, `super::`, `self::` or a child module's name
(comments, strings and `#[cfg(test)]` modules are left out; declaring a
child with `mod x;` is not naming it). Fails, listing them, if modules name
each other, directly or round a longer loop: with none, the modules form
layers, and no lower one names a higher one.

Also fails on a source file under rust/ (outside tests/), or of the bench
(bench/: Rust, OCaml and C), of more than MAX_LINES lines.

    scripts/check-modules.py            check, print one line a crate
    scripts/check-modules.py --edges    also print every edge
"""
import os
import re
import sys

MAX_LINES = 700

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rust")
BENCH = os.path.join(ROOT, "..", "bench")


def strip(src):
    """Source without comments, string and char literals (kept as \"\")."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', src[i:]) and not re.match(r"\w", src[i - 1 : i] or " "):
            m = re.match(r'r(#*)"', src[i:])
            end = src.find('"' + m.group(1), i + len(m.group(0)))
            out.append('""')
            i = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\[ux]", src[i:]):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x..|\\.|[^\\'])'", src[i:])
            out.append("' '")
            i += len(m.group(0)) if m else 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_mods(code):
    """Remove `#[cfg(test)] mod x { ... }` blocks."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code)
        if not m:
            return code
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        code = code[: m.start()] + code[i:]


MOD = r"(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;"


def child_decls(code, raw):
    """Child modules declared `mod x;` in `code` (stripped): (name, the
    file of its #[path], read from `raw`, or None)."""
    paths = {m.group(2): m.group(1)
             for m in re.finditer(r"#\[path\s*=\s*\"([^\"]*)\"\]\s*" + MOD, raw)}
    decls = []
    for m in re.finditer(r"(#\[path\s*=\s*\"\"\]\s*)?" + MOD, code):
        decls.append((m.group(2), paths.get(m.group(2)) if m.group(1) else None))
    return decls


def load_crate(lib):
    """{module path tuple: stripped code} for the crate rooted at lib."""
    mods = {}

    def visit(path, modpath, dir_for_children):
        with open(path, encoding="utf-8") as f:
            raw = f.read()
        code = drop_test_mods(strip(raw))
        mods[modpath] = code
        for name, file in child_decls(code, raw):
            if file is not None:
                # A file included by path (one shared with another crate):
                # a module of this crate all the same.
                cand = os.path.normpath(os.path.join(os.path.dirname(path), file))
                visit(cand, modpath + (name,), os.path.join(os.path.dirname(cand), name))
                continue
            for cand in (os.path.join(dir_for_children, name + ".rs"),
                         os.path.join(dir_for_children, name, "mod.rs")):
                if os.path.exists(cand):
                    sub = os.path.join(dir_for_children, name)
                    visit(cand, modpath + (name,), sub)
                    break

    visit(lib, (), os.path.dirname(lib))
    return mods


PATH = re.compile(r"(?<![\w:])((?:[A-Za-z_]\w*)(?:\s*::\s*(?:[A-Za-z_]\w*|\{[^{}]*\}))+)")


def targets(mod, code, mods):
    """The modules that module `mod` names."""
    children = {m[-1] for m in mods if m[:-1] == mod and len(m) == len(mod) + 1}
    # A name brought in from another crate (`use std::io;`) is not the
    # child module of that name.
    outside = set()
    for u in re.finditer(r"\buse\s+(\w+)(?:::\w+)*::(\w+)\s*(?:as\s+(\w+))?\s*;", code):
        if u.group(1) not in children | {"crate", "super", "self"}:
            outside.add(u.group(3) or u.group(2))
    children -= outside
    found = set()

    def resolve(segs):
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] in ("self", "super"):
            base, rest = mod, segs
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        elif segs[0] in children:
            base, rest = mod, segs
        else:
            return None
        best = base
        for s in rest:
            if best + (s,) in mods:
                best = best + (s,)
            else:
                break
        return best

    def expand(text):
        """a::b::{c, d::e} -> [[a,b,c],[a,b,d,e]] (one level of braces)."""
        text = re.sub(r"\s+", "", text)
        m = re.match(r"(.*?)::\{(.*)\}$", text)
        if not m:
            return [text.split("::")]
        head = m.group(1).split("::")
        return [head + part.split("::") for part in m.group(2).split(",") if part]

    for m in PATH.finditer(code):
        for segs in expand(m.group(1)):
            segs = [s for s in segs if s]
            if not segs:
                continue
            t = resolve(segs)
            if t is not None and t != mod:
                found.add(t)
    return found


def sccs(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
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
            out.append(comp)

    for v in nodes:
        if v not in index:
            strong(v)
    return out


def name(crate, mod):
    return crate + ("::" + "::".join(mod) if mod else "")


def main():
    show = "--edges" in sys.argv[1:]
    bad = 0
    for crate in sorted(os.listdir(ROOT)):
        lib = os.path.join(ROOT, crate, "src", "lib.rs")
        if not os.path.exists(lib):
            continue
        mods = load_crate(lib)
        edges = {m: targets(m, code, mods) for m, code in mods.items()}
        if show:
            for m in sorted(edges):
                for t in sorted(edges[m]):
                    print(f"  {name(crate, m)} -> {name(crate, t)}")
        loops = [c for c in sccs(sorted(mods), edges) if len(c) > 1]
        for comp in loops:
            bad += 1
            members = set(comp)
            pairs = sorted(f"{name(crate, a)} -> {name(crate, b)}"
                           for a in comp for b in edges[a] if b in members)
            print(f"check-modules: {crate}: modules in a circle: " + "; ".join(pairs))
        n = sum(len(v) for v in edges.values())
        print(f"check-modules: {crate}: {len(mods)} modules, {n} edges, "
              f"{'no circles' if not loops else str(len(loops)) + ' circle(s)'}")
    for root, kinds in ((ROOT, (".rs",)), (BENCH, (".rs", ".ml", ".c"))):
        for top, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in ("tests", "target"))
            for f in sorted(files):
                if not f.endswith(kinds):
                    continue
                path = os.path.join(top, f)
                with open(path, encoding="utf-8") as fh:
                    n = sum(1 for _ in fh)
                if n > MAX_LINES:
                    bad += 1
                    rel = os.path.relpath(path, os.path.join(ROOT, ".."))
                    print(f"check-modules: {rel}: {n} lines, more than {MAX_LINES}: split it")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
