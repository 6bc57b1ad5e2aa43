#!/usr/bin/env python3
"""Checks the workspace's structure, what the compiler does not:

1. the kit's crates depend only downwards, in the order of `KIT` below
   (Cargo forbids a cycle between crates, not a dependency sideways or
   upwards): read from `cargo metadata`;
2. inside each crate, no two modules use each other, directly or round a
   circle (Rust allows it; a reader should find each module's
   dependencies below it).

A module is a file (`a/b.rs` is `a::b`, `a/mod.rs` is `a`). Module M uses
module N when M's file names a path into N: `crate::…`, `super::…`,
`self::…` (in `use` trees too), or a macro that N exports with
`#[macro_export]`. Inline `mod tests` blocks count as part of their file.

Run by `make test` (and `make lint`). Before checking the workspace it
checks itself on made-up input (a module cycle, a kit crate depending
upwards) and fails if it does not see the fault.

    scripts/ci/check-structure.py            check the workspace
    scripts/ci/check-structure.py --graph    also print every module's uses
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The kit, from the bottom: a crate may depend on those of a lower rank
# only (upstream and auth side by side: neither uses the other).
KIT = {
    "kit-config": 0,
    "kit-observability": 1,
    "kit-data": 2,
    "kit-http": 3,
    "kit-upstream": 4,
    "kit-auth": 4,
    "kit-server": 5,
}


def module_name(src: Path, file: Path) -> str:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return "::".join(parts)


def strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"r#\".*?\"#", '""', text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def test_module_span(text: str):
    """The span of an inline `mod tests { … }`, where `super` is the file's module."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if not m:
        return None
    depth, i = 0, m.end() - 1
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return (m.start(), i)
        i += 1
    return (m.start(), len(text))


def expand_use_tree(tree: str):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    depth, start, items = 0, 0, []
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    for i, c in enumerate(inner + ","):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            part = inner[start:i]
            start = i + 1
            if part:
                items += [prefix + p for p in expand_use_tree(part)]
    return items


def paths_in(text: str):
    """Every path that starts with crate::, super:: or self::, with use trees expanded."""
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        found += expand_use_tree(m.group(1))
    rest = re.sub(r"\buse\s+[^;]+;", "", text)
    found += re.findall(r"(?<![\w:$])((?:crate|super|self)(?:::\w+)+)", rest)
    return [p for p in found if p.split("::")[0] in ("crate", "super", "self")]


def resolve(path: str, here: str, modules, in_tests: bool):
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = [], parts[1:]
    elif parts[0] == "self":
        base, rest = here.split("::") if here else [], parts[1:]
    else:  # super
        base = here.split("::") if here else []
        rest = parts
        if in_tests:  # `super` of an inline test module is the file's own module
            rest = rest[1:]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    target = list(base)
    best = "::".join(target)
    for part in rest:
        target.append(part)
        name = "::".join(target)
        if name in modules:
            best = name
        else:
            break
    return best


def graph_of(crate_dir: Path):
    src = crate_dir / "src"
    files = sorted(src.rglob("*.rs"))
    modules = {module_name(src, f): f for f in files}
    texts = {m: strip_comments_and_strings(f.read_text()) for m, f in modules.items()}
    macros = {}
    for m, text in texts.items():
        for name in re.findall(r"#\[macro_export\]\s*macro_rules!\s*(\w+)", text):
            macros[name] = m
    # `pub use a::b::Item;` in the crate's root: `crate::Item` is a use of `a::b`.
    reexports = {}
    for tree in re.findall(r"\bpub\s+use\s+([^;]+);", texts.get("", "")):
        for path in expand_use_tree(tree):
            parts = path.split("::")
            reexports[parts[-1]] = resolve("crate::" + "::".join(parts[:-1]), "", modules, False)
    edges = {m: set() for m in modules}
    for m, text in texts.items():
        span = test_module_span(text)
        regions = [(text, False)]
        if span:
            regions = [(text[: span[0]] + text[span[1] :], False), (text[span[0] : span[1]], True)]
        for region, in_tests in regions:
            for path in paths_in(region):
                parts = path.split("::")
                if parts[0] == "crate" and len(parts) == 2 and parts[1] in macros:
                    target = macros[parts[1]]
                elif parts[0] == "crate" and len(parts) == 2 and parts[1] in reexports:
                    target = reexports[parts[1]]
                else:
                    target = resolve(path, m, modules, in_tests)
                if target != m and target in modules:
                    edges[m].add(target)
            for name in re.findall(r"\b(\w+)!\s*[\(\{\[]", region):
                if name in macros and macros[name] != m:
                    edges[m].add(macros[name])
    return edges


def cycles(edges):
    """Every group of modules that use each other in a circle (Tarjan's
    strongly connected components), each as one path around it."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(path_around(sorted(group), edges))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def path_around(group, edges):
    """A walk from the group's first module back to it, inside the group."""
    start, members = group[0], set(group)
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for nxt in sorted(edges[path[-1]] & members):
            if nxt == start:
                return path + [start]
            if nxt not in path:
                paths.append(path + [nxt])
    return group


def kit_faults(packages):
    """Each kit crate's dependency on a kit crate of its own rank or above.
    `packages`: name -> the names of its normal dependencies."""
    faults = []
    for name, deps in sorted(packages.items()):
        if name not in KIT:
            continue
        for dep in sorted(deps):
            if dep in KIT and KIT[dep] >= KIT[name]:
                faults.append(f"{name} depends on {dep}, which is not below it")
    return faults


def workspace_packages():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    meta = json.loads(out)
    packages = {}
    for package in meta["packages"]:
        deps = {d["name"] for d in package["dependencies"] if d.get("kind") is None}
        src = Path(package["manifest_path"]).parent
        packages[package["name"]] = (deps, src)
    return packages


def check(crate_dir: Path, show: bool):
    edges = graph_of(crate_dir)
    problems = ["import cycle: " + " -> ".join(cycle) for cycle in cycles(edges)]
    if show:
        for m in sorted(edges):
            print(f"  {m or '(root)'} -> {', '.join(sorted(edges[m])) or '-'}")
    return problems


def self_test():
    """The checker must see a module cycle and a kit crate depending upwards."""
    with tempfile.TemporaryDirectory() as tmp:
        cyclic = Path(tmp, "cyclic")
        (cyclic / "src").mkdir(parents=True)
        (cyclic / "src/lib.rs").write_text("pub mod a;\npub mod b;\n")
        (cyclic / "src/a.rs").write_text("use crate::b::{x, y};\n")
        (cyclic / "src/b.rs").write_text("pub fn x() { super::a::z() }\n")
        if not any("cycle" in p for p in check(cyclic, False)):
            sys.exit("check-structure: self-test failed: the cycle a -> b -> a was not seen")
    upwards = {"kit-http": {"kit-upstream", "serde"}, "kit-auth": {"kit-upstream"}}
    faults = kit_faults(upwards)
    if len(faults) != 2:
        sys.exit(f"check-structure: self-test failed: the kit's upward dependencies were not all seen: {faults}")


def main():
    show = "--graph" in sys.argv
    self_test()
    packages = workspace_packages()
    problems = kit_faults({name: deps for name, (deps, _) in packages.items()})
    missing = sorted(set(KIT) - set(packages))
    problems += [f"{name}: not in the workspace (KIT lists it)" for name in missing]
    for name, (_, src) in sorted(packages.items()):
        if not (src / "src").is_dir():
            continue
        if show:
            print(name)
        problems += [f"{name}: {p}" for p in check(src, show)]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(
        f"check-structure: the kit's {len(KIT)} crates depend only downwards; no import cycle in the "
        f"{len(packages)} crates' modules"
    )


if __name__ == "__main__":
    main()
