#!/usr/bin/env python3
"""Docs that cannot drift: the README and the guide (docs/src) against the tree.

Python 3's standard library only, like the other checkers here.

    scripts/docs/check-docs.py check [--bin-dir DIR]
        Every check that needs no running system (`make check-docs`):
        - links: every relative link and #anchor of README.md and
          docs/src/**/*.md resolves (a file that exists; a heading of that
          file, by GitHub's and mdBook's slug rule: lower case, letters,
          digits, `_` and `-` kept, blanks to `-`, the rest dropped; a
          repeated heading gets -1, -2, ...); every pointer into the docs
          from any other file of the repository (`docs/src/FILE.md#anchor`
          in a comment, `README: "Heading"`, `the guide's "Heading"`)
          resolves too; SUMMARY.md lists every chapter, and each exists;
          the README stays a front page (at most 200 lines);
        - names: every `make TARGET` the docs show is a target of the
          Makefile; every `scripts/...` they name exists; every repository
          path in `backticks` exists (a path under a top-level folder or
          file of the checkout, globs and {a,b} allowed; git-ignored and
          generated ones are not checked); every environment variable they
          present (`NAME`, `NAME=value`, `$NAME` in code) is named somewhere
          in the repository outside the docs (or read by a tool, listed in
          EXTERNAL_VARIABLES below);
        - the configuration reference: every variable the system reads is a
          row of its table (docs/src/how-it-works/configuration.md): those
          the binaries list in `--help` (clap's `env`, from --bin-dir,
          default target/debug; from the sources' `env = "..."` when the
          binaries are not built), the PREFIX_SUFFIX ones of each service's
          `calls_to!(Name, "PREFIX", ...)` (crates/config/src/lib.rs), `std::env::var` in the crates and
          services, `${NAME:-...}` in scripts/dev/run.sh, scripts/dev/stack.sh and
          gateway/render.sh, `${GATEWAY_...}` in the gateway's template and
          `${NAME...}` in compose.yaml;
        - includes: every `{{#include PATH:ANCHOR}}` of the guide names a file
          that exists and an anchor that it has (`ANCHOR: name` and
          `ANCHOR_END: name`: mdbook itself includes nothing, silently, for
          an anchor it does not find); every ANCHOR in the tree is paired
          and used by the guide;
        - examples: each example block is a ```sh block whose every `curl`
          fails on an HTTP error (-f), and the blocks that start a kind of
          system agree wherever they are written.

    scripts/docs/check-docs.py examples --kind KIND [--print] [--ready-url URL]
                                   [--ready-timeout SECONDS]
        The README's and the guide's examples of one kind, extracted from
        the Markdown and run against a system started as they say. In the
        Markdown, an HTML comment (invisible on GitHub and in the book) on
        the line before a ```sh block marks it:

            <!-- example-start: KIND -->   starts the system (run in the
                                           background, in its own process
                                           group; every such block of KIND
                                           must be the same command)
            <!-- example: KIND -->         runs against it, in the order of
                                           the files (README.md, then
                                           SUMMARY.md's), one bash per file
                                           (`set -euo pipefail`), so a block
                                           may use what an earlier block of
                                           its file set
            <!-- example-stop: KIND -->    optional: run after the examples,
                                           before the start block's process
                                           group gets SIGINT (as Ctrl-C)

        KIND is `make-run` (`make run`), `compose` (`docker compose up`:
        for `make compose-test`) or `k8s`. --print prints the start command
        and the examples as one bash script each, and runs nothing. Running:
        the system must answer --ready-url (default
        http://127.0.0.1:8080/healthz: the examples are run as written,
        against localhost:8080, so the port must be free first) within
        --ready-timeout (default 1800 s: `make run` may build first); each
        file's blocks must exit 0; then the system is stopped (SIGINT to the
        start's process group, then SIGTERM, then SIGKILL) and its port must
        be free again. For make-run, RUN_DIR and DATA_DIR are a fresh temp
        folder (the checkout's own data/ and .run/ are left alone), exported
        to the start and to the examples alike; RUN_BIN_DIR and anything
        else in the environment pass through.

    scripts/docs/check-docs.py self-test
        Runs the checks above on small broken copies of a docs tree in a
        temp folder and fails unless each breakage is reported: a broken
        link, a broken anchor, a pointer from code to a missing anchor, a
        missing include anchor, an unknown make target, an unknown script,
        an unknown path, an undocumented variable read by a script, a
        variable the docs invent, a curl without -f in an example, and an
        example block that fails against a running (stand-in) system.

--root DIR checks another tree (the self-test's). Exit status 0: all good;
1: something is reported, one line each, FILE:LINE: what.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

README_MAX_LINES = 200
CONFIG_REFERENCE = "docs/src/how-it-works/configuration.md"
# Variables read by tools and libraries, not by this repository's code or
# scripts: the docs may name them though no file here does.
EXTERNAL_VARIABLES = {
    "TOKIO_WORKER_THREADS": "tokio reads it",
    "DOCKER_BUILDKIT": "docker's",
    "COMPOSE_DOCKER_CLI_BUILD": "docker-compose 1.29's",
    "OTEL_BSP_SCHEDULE_DELAY": "the OpenTelemetry SDK's",
    "OTEL_TRACES_SAMPLER": "the OpenTelemetry SDK's",
    "OTEL_EXPORTER_OTLP_HEADERS": "the OpenTelemetry SDK's",
    "GIT_SHA": "a placeholder in the Pact Broker's commands",
}
# Top-level folders whose files are made, not kept: paths into them are
# not checked.
GENERATED = {"target", "data", ".run", "secrets", ".venv", ".schemathesis", ".cargo-vendor", "node_modules"}
SHELL_LANGS = {"sh", "bash", "shell", "console"}
ENV_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"


class Report:
    def __init__(self, root: Path):
        self.root = root
        self.errors: list[str] = []

    def error(self, path: Path | str, line: int | None, message: str) -> None:
        where = self.rel(path) + (f":{line}" if line else "")
        self.errors.append(f"{where}: {message}")

    def rel(self, path: Path | str) -> str:
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


# ---- Markdown ---------------------------------------------------------------

FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([\w+-]*)")


class Block:
    def __init__(self, lang: str, start: int, text: str, marker: tuple[str, str] | None):
        self.lang, self.start, self.text, self.marker = lang, start, text, marker


class Doc:
    """A Markdown file: its prose lines (code blocks blanked), its code
    blocks, its heading slugs and its example markers."""

    MARKER = re.compile(r"^\s*<!--\s*(example|example-start|example-stop):\s*([\w-]+)\s*-->\s*$")

    def __init__(self, path: Path):
        self.path = path
        self.lines = path.read_text(encoding="utf-8").split("\n")
        self.prose: list[str] = []
        self.blocks: list[Block] = []
        self.markers_unused: list[tuple[int, str]] = []
        fence = None
        pending = None  # (line number, marker) waiting for its block
        body: list[str] = []
        for number, line in enumerate(self.lines, 1):
            if fence is None:
                m = FENCE.match(line)
                if m:
                    fence = (m.group(2)[0], len(m.group(2)), m.group(3).lower(), number)
                    body = []
                    self.prose.append("")
                    continue
                marker = self.MARKER.match(line)
                if marker:
                    if pending:
                        self.markers_unused.append(pending[:2])
                    pending = (number, f"{marker.group(1)}:{marker.group(2)}", (marker.group(1), marker.group(2)))
                elif line.strip() and pending:
                    self.markers_unused.append(pending[:2])
                    pending = None
                self.prose.append(line)
            else:
                close = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", line)
                if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= fence[1]:
                    marker = pending[2] if pending and pending[0] == fence[3] - 1 else None
                    if pending and not marker:
                        self.markers_unused.append(pending[:2])
                    pending = None
                    self.blocks.append(Block(fence[2], fence[3] + 1, "\n".join(body), marker))
                    fence = None
                else:
                    body.append(line)
                self.prose.append("")
        if pending:
            self.markers_unused.append(pending[:2])
        self.headings = self._headings()
        # <!-- check-docs: hypothetical WORD... -->: names and paths that hold
        # one of these words are an example's, not the tree's (Extending).
        self.hypothetical = [w for m in re.finditer(r"<!--\s*check-docs:\s*hypothetical\s+([^>]*?)\s*-->", "\n".join(self.lines))
                             for w in m.group(1).split()]

    def _headings(self) -> dict[str, int]:
        slugs: dict[str, int] = {}
        seen: dict[str, int] = {}
        for number, line in enumerate(self.prose, 1):
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                slugs[base if n == 0 else f"{base}-{n}"] = number
            for a in re.finditer(r"<a\s+(?:id|name)=\"([^\"]+)\"", line):
                slugs[a.group(1)] = number
        return slugs

    def heading_texts(self) -> set[str]:
        texts = set()
        for line in self.prose:
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                texts.add(plain(m.group(1)).lower())
        return texts


def plain(text: str) -> str:
    """A heading's text as shown: links reduced to their text, no markup."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("`", "").replace("*", "").strip()


def slug(heading: str) -> str:
    """GitHub's and mdBook's heading ids (the same rule)."""
    out = []
    for ch in plain(heading).lower():
        if ch.isalnum() or ch in "_-":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def inline_code(line: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"(`+)(.+?)\1", line)]


def without_code(line: str) -> str:
    return re.sub(r"(`+)(.+?)\1", "", line)


# ---- the tree ---------------------------------------------------------------


def repo_files(root: Path) -> list[Path]:
    """The files of the checkout that git keeps or would keep (tracked, and
    new ones that are not ignored); every file when it is no git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root, capture_output=True, check=True,
        ).stdout.decode()
        return [root / p for p in out.split("\0") if p and (root / p).is_file()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in GENERATED]
            files += [Path(dirpath) / f for f in filenames]
        return files


def ignored(root: Path, paths: list[str]) -> set[str]:
    if not paths:
        return set()
    try:
        out = subprocess.run(
            ["git", "check-ignore", "--no-index", "--stdin", "-z"], cwd=root,
            input="\0".join(paths).encode(), capture_output=True,
        ).stdout.decode()
        return {p for p in out.split("\0") if p}
    except FileNotFoundError:
        return set()


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def docs_of(root: Path) -> list[Path]:
    """README.md, then the guide's chapters in SUMMARY.md's order (and any
    chapter it misses, last)."""
    src = root / "docs/src"
    chapters = []
    summary = src / "SUMMARY.md"
    if summary.exists():
        for m in re.finditer(r"\]\(([^)#]+\.md)\)", summary.read_text(encoding="utf-8")):
            path = (src / m.group(1)).resolve()
            if path not in chapters:
                chapters.append(path)
    rest = sorted(p.resolve() for p in src.rglob("*.md")) if src.exists() else []
    ordered = [root / "README.md"] if (root / "README.md").exists() else []
    ordered += [summary.resolve()] if summary.exists() else []
    ordered += [p for p in chapters if p.exists()]
    ordered += [p for p in rest if p not in ordered]
    return ordered


# ---- links --------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")


def check_target(report: Report, docs: dict[Path, Doc], source: Path, line: int, target: str) -> None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
        return  # another site, mailto:
    path_part, _, anchor = target.partition("#")
    dest = source if not path_part else (source.parent / path_part).resolve()
    if path_part and not dest.exists():
        report.error(source, line, f"link to {target}: no such file ({report.rel(dest)})")
        return
    if not anchor:
        return
    if dest.is_dir() or dest.suffix != ".md":
        report.error(source, line, f"link to {target}: an anchor into a file that is not Markdown")
        return
    doc = docs.get(dest.resolve()) or Doc(dest)
    if anchor not in doc.headings:
        near = [s for s in doc.headings if anchor.split("-")[0] in s][:3]
        hint = f" (there: {', '.join('#' + n for n in near)})" if near else ""
        report.error(source, line, f"link to {target}: {report.rel(dest)} has no heading #{anchor}{hint}")


def check_links(report: Report, root: Path, docs: dict[Path, Doc]) -> None:
    for path, doc in docs.items():
        for number, line in enumerate(doc.prose, 1):
            text = without_code(line)
            for m in LINK.finditer(text):
                check_target(report, docs, path, number, m.group(1))
            m = REFDEF.match(line)
            if m:
                check_target(report, docs, path, number, m.group(1))
    readme = root / "README.md"
    if readme.exists():
        n = len(readme.read_text(encoding="utf-8").rstrip("\n").split("\n"))
        if n > README_MAX_LINES:
            report.error(readme, None, f"{n} lines: the README is a front page of at most {README_MAX_LINES}; move the rest into the guide")
    src = root / "docs/src"
    summary = src / "SUMMARY.md"
    if summary.exists():
        listed = {(src / m.group(1)).resolve() for m in re.finditer(r"\]\(([^)#]+\.md)\)", summary.read_text(encoding="utf-8"))}
        for chapter in sorted(src.rglob("*.md")):
            if chapter.resolve() != summary.resolve() and chapter.resolve() not in listed:
                report.error(chapter, None, "not in docs/src/SUMMARY.md: the book leaves it out")


POINTER_PATH = re.compile(r"(?<![\w/.-])((?:docs/src/[\w./-]+\.md|README\.md)(?:#[\w-]+)?)")
# `README: "Heading"`, `the guide's "Heading"`, also across a comment's
# line break (`the README's` / `// "Heading"`).
POINTER_NAMED = re.compile(r"\b(README|guide)(?:'s)?[:,]?[ \t]*(?:\n[ \t]*(?://[!/]?|#|--|\*)?)?[ \t]*\"([^\"\n]{2,80})\"")


def check_pointers(report: Report, root: Path, docs: dict[Path, Doc], files: list[Path]) -> None:
    """Pointers into the docs from every other file: code comments, YAML,
    scripts."""
    guide_headings: set[str] = set()
    for path, doc in docs.items():
        if path != (root / "README.md").resolve():
            guide_headings |= doc.heading_texts()
    readme = docs.get((root / "README.md").resolve())
    readme_headings = readme.heading_texts() if readme else set()
    skip = {(root / "README.md").resolve(), (root / "scripts/docs/check-docs.py").resolve()}
    for path in files:
        rpath = path.resolve()
        if rpath in skip or rpath in docs or (root / "docs/src") in rpath.parents:
            continue
        text = read_text(path)
        if text is None or ("docs/src/" not in text and "README" not in text and "guide" not in text):
            continue
        for m in POINTER_NAMED.finditer(text):
            where, heading = m.group(1), plain(m.group(2)).lower()
            headings = readme_headings if where == "README" else guide_headings
            if heading not in headings:
                place = "the README" if where == "README" else "the guide (docs/src)"
                number = text.count("\n", 0, m.start()) + 1
                report.error(path, number, f'points to {where} "{m.group(2)}": {place} has no such heading; point to docs/src/FILE.md#anchor')
        for number, line in enumerate(text.split("\n"), 1):
            for m in POINTER_PATH.finditer(line):
                target = m.group(1)
                file_part, _, anchor = target.partition("#")
                dest = (root / file_part).resolve()
                if not dest.exists():
                    report.error(path, number, f"points to {target}: no such file")
                elif anchor:
                    doc = docs.get(dest) or Doc(dest)
                    if anchor not in doc.headings:
                        report.error(path, number, f"points to {target}: no heading #{anchor} there")



# ---- names ----------------------------------------------------------------------


def make_targets(root: Path) -> set[str]:
    makefile = root / "Makefile"
    if not makefile.exists():
        return set()
    return set(re.findall(r"^([a-zA-Z][\w-]*)\s*:(?!=)", makefile.read_text(encoding="utf-8"), re.M))


def expand_braces(path: str) -> list[str]:
    m = re.search(r"\{([^{}]*,[^{}]*)\}", path)
    if not m:
        return [path]
    return [x for alt in m.group(1).split(",") for x in expand_braces(path[: m.start()] + alt + path[m.end():])]


def hypothetical(doc: Doc, name: str) -> bool:
    return any(word in name for word in doc.hypothetical)


def code_texts(doc: Doc) -> list[tuple[int, str, bool]]:
    """(line, text, is_shell): every inline code span of the prose and every
    line of a shell code block."""
    out = []
    for number, line in enumerate(doc.prose, 1):
        for span in inline_code(line):
            out.append((number, span, False))
    for block in doc.blocks:
        if block.lang in SHELL_LANGS:
            for i, line in enumerate(block.text.split("\n")):
                out.append((block.start + i, line, True))
    return out


def env_names_in(text: str, is_shell: bool) -> list[str]:
    """The variables a code span or a shell line presents: NAME alone,
    NAME=value, $NAME, ${NAME}, NAME_* (a family)."""
    names = []
    if is_shell:
        code = re.sub(r"#.*$", "", text) if not text.lstrip().startswith("#") else ""
        names += re.findall(r"(?:^|[\s;&|(])(" + ENV_NAME + r")=", code)
        names += re.findall(r"\$\{?(" + ENV_NAME + r")\b", code)
        return names
    span = text.strip()
    m = re.fullmatch(r"\$?\{?(" + ENV_NAME + r")\}?(?:=\S*)?", span)
    if m:
        return [m.group(1)]
    m = re.fullmatch(r"(" + ENV_NAME + r"|[A-Z][A-Z0-9]*)_\*", span)
    if m:
        return [m.group(1) + "_*"]
    names += re.findall(r"(?:^|\s)(" + ENV_NAME + r")=", span)
    names += re.findall(r"\$\{?(" + ENV_NAME + r")\b", span)
    return names


def check_names(report: Report, root: Path, docs: dict[Path, Doc], files: list[Path], read: set[str]) -> None:
    targets = make_targets(root)
    # The names in files, and those the code composes (calls_to!'s).
    words: set[str] = set(read)
    for path in files:
        rpath = path.resolve()
        if rpath in docs or (root / "docs/src") in rpath.parents or rpath == (root / "scripts/docs/check-docs.py").resolve():
            continue
        text = read_text(path)
        if text:
            words.update(re.findall(r"[A-Z][A-Z0-9_]*[A-Z0-9]", text))
    top = {p.name for p in root.iterdir()} - GENERATED
    path_checks: list[tuple[Path, int, str]] = []
    for path, doc in docs.items():
        for number, text, is_shell in code_texts(doc):
            code = re.sub(r"(?:^|\s)#.*$", "", text) if is_shell else text
            for m in re.finditer(r"(?<![\w/.-])make\s+([a-z][\w-]*)", code):
                if m.group(1) not in targets:
                    report.error(path, number, f"`make {m.group(1)}`: the Makefile has no target {m.group(1)}")
            for name in env_names_in(text, is_shell):
                if hypothetical(doc, name):
                    continue
                if name.endswith("_*"):
                    if not any(w.startswith(name[:-1]) for w in words):
                        report.error(path, number, f"{name}: no variable of that family is named anywhere outside the docs")
                elif name not in words and name not in EXTERNAL_VARIABLES:
                    report.error(path, number, f"{name}: no file outside the docs names this variable (a typo, or a setting that is gone?)")
            if not is_shell:
                candidate = text.strip().rstrip(":,.")
                if re.fullmatch(r"[\w.*{},/-]+", candidate) and "/" in candidate and not candidate.startswith(("/", "./", "../", "http")):
                    first = candidate.split("/")[0]
                    if first in top:
                        path_checks.append((path, number, candidate))
        for number, line in enumerate(doc.lines, 1):
            for m in re.finditer(r"(?<![\w/.-])(scripts/[\w./-]*\w)", line):
                if not (root / m.group(1)).exists():
                    report.error(path, number, f"{m.group(1)}: no such script")
    # Paths in backticks: each must exist, unless git ignores it (made by a tool).
    wanted = sorted({c.rstrip("/") for _, _, c in path_checks if "*" not in c and "{" not in c})
    gone = {p.rstrip("/") for p in ignored(root, wanted + [w + "/" for w in wanted])}
    for path, number, candidate in path_checks:
        if candidate.rstrip("/") in gone or hypothetical(docs[path.resolve()], candidate):
            continue
        matches = [m for p in expand_braces(candidate) for m in glob.glob(str(root / p))]
        if not matches:
            report.error(path, number, f"`{candidate}`: no such file or folder in the repository")


# ---- the configuration reference ---------------------------------------------------


def documented_variables(root: Path) -> set[str]:
    path = root / CONFIG_REFERENCE
    names: set[str] = set()
    if not path.exists():
        return names
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("|"):
            first = line.split("|")[1]
            names.update(re.findall(r"`(" + ENV_NAME + r")`", first))
    return names


def variables_read(root: Path, bin_dir: Path | None, notes: list[str]) -> dict[str, str]:
    """Every variable the system reads, and what reads it."""
    read: dict[str, str] = {}
    # The binaries' clap settings: their --help, else their sources.
    binaries = sorted(p.parent.parent.name for p in (root / "services").glob("*/src/main.rs"))
    for name in binaries:
        exe = (bin_dir or root / "target/debug") / name
        if exe.exists():
            out = subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout
            for var in re.findall(r"\[env: (" + ENV_NAME + r")[=\]]", out):
                read.setdefault(var, f"{name} --help")
        else:
            notes.append(f"no {exe}: reading {name}'s clap settings from its sources (cargo build --bins to ask the binary)")
            for src in list((root / "services" / name / "src").rglob("*.rs")) + list((root / "crates").rglob("*.rs")):
                for var in re.findall(r"env\s*=\s*\"(" + ENV_NAME + r")\"", src.read_text(encoding="utf-8")):
                    read.setdefault(var, f"{src.relative_to(root)} (clap env)")
    # calls_to!(Name, "PREFIX", ...): PREFIX + each suffix of the macro's
    # `env = concat!($env, "_SUFFIX")` (the sources, when no binary says).
    config = root / "crates/config/src/lib.rs"
    if config.exists():
        suffixes = set(re.findall(r"env\s*=\s*concat!\(\$env,\s*\"(_[A-Z0-9_]+)\"\)", config.read_text(encoding="utf-8")))
        for src in (root / "services").glob("*/src/*.rs"):
            for prefix in re.findall(r"calls_to!\(\s*\w+,\s*\"([A-Z][A-Z0-9_]*)\"", src.read_text(encoding="utf-8")):
                for suffix in suffixes:
                    read.setdefault(f"{prefix}{suffix}", f"{src.relative_to(root)} (calls_to!)")
    # std::env::var and the telemetry's env(...).
    for src in itertools.chain((root / "crates").rglob("*.rs"), (root / "services").rglob("*.rs")):
        if "/tests/" in str(src):
            continue
        text = src.read_text(encoding="utf-8")
        text = text.split("#[cfg(test)]")[0]
        for var in re.findall(r"(?:env::var(?:_os)?|\benv)\(\s*\"(" + ENV_NAME + r")\"\s*\)", text):
            read.setdefault(var, f"{src.relative_to(root)}")
    # The scripts that run the system, the gateway's template, compose.
    for rel, pattern in (
        ("scripts/dev/run.sh", r"\$\{(" + ENV_NAME + r"):?[-+=?]"),
        ("scripts/dev/stack.sh", r"\$\{(" + ENV_NAME + r"):?[-+=?]"),
        ("gateway/render.sh", r"\$\{(" + ENV_NAME + r"):?[-+=?]"),
        ("gateway/templates/gateway.conf.template", r"\$\{(GATEWAY_[A-Z0-9_]+)\}"),
        ("compose.yaml", r"\$\{(" + ENV_NAME + r")(?::?[-+?][^}]*)?\}"),
    ):
        path = root / rel
        if path.exists():
            for var in re.findall(pattern, path.read_text(encoding="utf-8")):
                read.setdefault(var, rel)
    return read


def check_configuration(report: Report, root: Path, read: dict[str, str]) -> None:
    documented = documented_variables(root)
    for var, by in sorted(read.items()):
        if var not in documented:
            report.error(root / CONFIG_REFERENCE, None, f"{var} (read by {by}) is not in the configuration reference's table")


# ---- includes -------------------------------------------------------------------------

INCLUDE = re.compile(r"(?<!\\)\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")


def check_includes(report: Report, root: Path, docs: dict[Path, Doc], files: list[Path]) -> None:
    used: set[tuple[Path, str]] = set()
    for path, doc in docs.items():
        for number, line in enumerate(doc.lines, 1):
            for m in INCLUDE.finditer(line):
                spec = m.group(2)
                file_part, _, rest = spec.partition(":")
                target = (path.parent / file_part).resolve()
                if not target.is_file():
                    report.error(path, number, f"{{{{#{m.group(1)} {spec}}}}}: no such file {report.rel(target)}")
                    continue
                if rest and not re.fullmatch(r"[0-9]*(:[0-9]*)?", rest):
                    text = target.read_text(encoding="utf-8")
                    has_start = re.search(r"ANCHOR:\s*" + re.escape(rest) + r"\b", text)
                    has_end = re.search(r"ANCHOR_END:\s*" + re.escape(rest) + r"\b", text)
                    if not (has_start and has_end):
                        report.error(path, number, f"{{{{#{m.group(1)} {spec}}}}}: {report.rel(target)} has no ANCHOR/ANCHOR_END pair named {rest} (mdbook would include nothing)")
                    used.add((target, rest))
    for path in files:
        if path.suffix == ".md" or path.resolve() == (root / "scripts/docs/check-docs.py").resolve():
            continue
        text = read_text(path)
        if not text or "ANCHOR" not in text:
            continue
        starts = {m.group(1): text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"\bANCHOR:\s*([\w-]+)", text)}
        ends = set(re.findall(r"\bANCHOR_END:\s*([\w-]+)", text))
        for name, line in starts.items():
            if name not in ends:
                report.error(path, line, f"ANCHOR: {name} has no ANCHOR_END")
            elif (path.resolve(), name) not in used:
                report.error(path, line, f"ANCHOR: {name} is included nowhere in the guide: remove it, or include it")
        for name in ends - set(starts):
            report.error(path, None, f"ANCHOR_END: {name} has no ANCHOR")


# ---- examples -------------------------------------------------------------------------


def examples(docs: list[Doc], kind: str):
    starts, runs, stops = [], [], []
    for doc in docs:
        mine = [b for b in doc.blocks if b.marker and b.marker[1] == kind]
        starts += [(doc, b) for b in mine if b.marker[0] == "example-start"]
        stops += [(doc, b) for b in mine if b.marker[0] == "example-stop"]
        blocks = [b for b in mine if b.marker[0] == "example"]
        if blocks:
            runs.append((doc, blocks))
    return starts, runs, stops


def check_examples(report: Report, docs: dict[Path, Doc]) -> None:
    kinds: dict[str, list[tuple[Doc, Block]]] = {}
    for path, doc in docs.items():
        for number, marker in doc.markers_unused:
            report.error(path, number, f"<!-- {marker} --> is not on the line before a code block")
        for block in doc.blocks:
            if not block.marker:
                continue
            if block.lang not in SHELL_LANGS:
                report.error(path, block.start - 1, f"an example block must be ```sh, not ```{block.lang or '(no language)'}")
            if block.marker[0] == "example-start":
                kinds.setdefault(block.marker[1], []).append((doc, block))
            if block.marker[0] == "example":
                for i, line in enumerate(block.text.split("\n")):
                    code = re.sub(r"\s#.*$", "", line)
                    for m in re.finditer(r"(?<![\w-])curl\b((?:\s+[^|;&]*)?)", code):
                        args = m.group(1)
                        if not re.search(r"(?:^|\s)(?:-[a-zA-Z]*f[a-zA-Z]*|--fail(?:-with-body)?)(?=\s|$)", args):
                            report.error(path, block.start + i, "curl without -f in an example: an HTTP error would pass unnoticed (curl -fsS)")
    for kind, found in kinds.items():
        texts = {b.text.strip() for _, b in found}
        if len(texts) > 1:
            where = ", ".join(f"{d.path.name}:{b.start}" for d, b in found)
            report.error(found[0][0].path, found[0][1].start, f"the blocks that start {kind} differ ({where}): the README and the guide must start it the same way")


def port_of(url: str) -> int:
    m = re.match(r"^https?://[^/:]+:(\d+)", url)
    return int(m.group(1)) if m else 80


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def run_examples(root: Path, kind: str, print_only: bool, ready_url: str, ready_timeout: float,
                 work_parent: Path | None = None) -> int:
    docs = [Doc(p) for p in docs_of(root)]
    starts, runs, stops = examples(docs, kind)
    report = Report(root)
    check_examples(report, {d.path.resolve(): d for d in docs})
    if report.errors:
        print("\n".join(report.errors), file=sys.stderr)
        return 1
    if not starts or not runs:
        print(f"examples: no <!-- example-start: {kind} --> block, or no <!-- example: {kind} --> block, in the docs", file=sys.stderr)
        return 1
    start = starts[0][1].text
    scripts = []
    for doc, blocks in runs:
        parts = ["set -euo pipefail"]
        for block in blocks:
            where = f"{report.rel(doc.path)}:{block.start}"
            parts.append(f"printf '\\n== example %s\\n' {where!r}")
            parts.append(block.text)
        scripts.append((report.rel(doc.path), "\n".join(parts) + "\n"))
    stop = "\n".join(b.text for _, b in stops)
    if print_only:
        print(f"# start ({kind}), run in the background until {ready_url} answers:\n{start}\n")
        for name, script in scripts:
            print(f"# {name}\n{script}")
        if stop:
            print(f"# stop\n{stop}")
        return 0

    port = port_of(ready_url)
    if port_in_use(port):
        print(f"examples: port {port} on 127.0.0.1 is in use: the examples are run as written, against localhost:{port};"
              f" stop what listens there and run again", file=sys.stderr)
        return 1
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="rest-microservices-examples.", dir=work_parent))
    if kind == "make-run":
        env["RUN_DIR"], env["DATA_DIR"] = str(work / "run"), str(work / "data")
    log_path = work / "start.log"
    print(f"== examples ({kind}): starting the system: {start}   (its output: {log_path})", flush=True)
    failed = 0
    with open(log_path, "wb") as log:
        system = subprocess.Popen(["bash", "-euo", "pipefail", "-c", start], cwd=root, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + ready_timeout
            while not ready(ready_url):
                if system.poll() is not None or time.monotonic() > deadline:
                    why = f"exited with status {system.returncode}" if system.returncode is not None else f"did not answer {ready_url} within {ready_timeout:.0f} s"
                    print(f"examples: the system {why}; the end of its output:", file=sys.stderr)
                    print("\n".join(log_path.read_text(errors="replace").split("\n")[-30:]), file=sys.stderr)
                    return 1
                time.sleep(1)
            for name, script in scripts:
                # Each file's blocks in one bash; their output is shown when
                # one fails (on success only which blocks ran).
                result = subprocess.run(["bash", "-c", script, "examples"], cwd=root, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
                if result.returncode != 0:
                    print(result.stdout, file=sys.stderr)
                    ran = [line[len("== example "):] for line in result.stdout.split("\n") if line.startswith("== example ")]
                    block = f"the block at {ran[-1]}" if ran else f"a block of {name}"
                    print(f"examples: FAILED: {block} exited with status {result.returncode} (its output above)", file=sys.stderr)
                    failed += 1
                else:
                    for line in result.stdout.split("\n"):
                        if line.startswith("== example "):
                            print(f"{line}: ok")
            if stop:
                subprocess.run(["bash", "-euo", "pipefail", "-c", stop], cwd=root, env=env)
        finally:
            stop_group(system)
    if port_in_use(port):
        print(f"examples: port {port} still answers after the system was stopped", file=sys.stderr)
        failed += 1
    if failed:
        print(f"examples: its output is in {log_path}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"== examples ({kind}): {sum(len(b) for _, b in runs)} blocks in {len(runs)} files passed")
    return 0


def stop_group(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    # What the start left in its group (a service still stopping).
    try:
        os.killpg(process.pid, 0)
        time.sleep(2)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---- check ------------------------------------------------------------------------------


def check(root: Path, bin_dir: Path | None, quiet: bool = False) -> list[str]:
    report = Report(root)
    docs = {p.resolve(): Doc(p) for p in docs_of(root)}
    files = repo_files(root)
    notes: list[str] = []
    check_links(report, root, docs)
    check_pointers(report, root, docs, files)
    read = variables_read(root, bin_dir, notes)
    check_names(report, root, docs, files, set(read))
    check_configuration(report, root, read)
    check_includes(report, root, docs, files)
    check_examples(report, docs)
    for note in [] if quiet else notes:
        print(f"note: {note}", file=sys.stderr)
    return report.errors


# ---- self-test ----------------------------------------------------------------------------


def fixture(base: Path, port: int) -> Path:
    """A small tree that passes every check."""
    root = base / "tree"
    files = {
        "Makefile": "## run: the system\nrun:\n\tscripts/run.sh\n",
        "scripts/dev/run.sh": "#!/usr/bin/env bash\necho \"${RUN_PORT:-8080}\"\n",
        "services/demo/src/main.rs": "fn main() {}\n",
        "services/demo/src/lib.rs": "// See docs/src/guide.md#the-part for why.\n"
                                    "// ANCHOR: part\npub fn part() {}\n// ANCHOR_END: part\n",
        "README.md": "# Demo\n\nRead [the guide](docs/src/guide.md#the-part); run `make run`\n"
                     "(`scripts/dev/run.sh`, `services/demo/src/lib.rs`, `RUN_PORT=8081`).\n\n"
                     "<!-- example-start: selftest -->\n```sh\n"
                     f"python3 -m http.server {port} --bind 127.0.0.1 --directory docs\n```\n",
        "docs/src/SUMMARY.md": "# Summary\n\n- [Guide](guide.md)\n- [Settings](how-it-works/configuration.md)\n",
        "docs/src/guide.md": "# Guide\n\n## The part\n\n```rust\n{{#include ../../services/demo/src/lib.rs:part}}\n```\n\n"
                             "Back to the [README](../../README.md) and [the part](#the-part).\n\n"
                             "<!-- example: selftest -->\n```sh\n"
                             f"curl -fsS http://127.0.0.1:{port}/src/SUMMARY.md >/dev/null\n```\n",
        "docs/src/how-it-works/configuration.md": "# Settings\n\n| variable | meaning |\n|---|---|\n| `RUN_PORT` | the port |\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "scripts/dev/run.sh").chmod(0o755)
    return root


def self_test() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    edit = lambda rel, old, new: (rel, old, new)  # noqa: E731
    cases = [
        ("a broken link", edit("docs/src/guide.md", "[the part](#the-part)", "[the part](missing.md)"), "no such file"),
        ("a broken anchor", edit("README.md", "guide.md#the-part", "guide.md#no-such-part"), "has no heading #no-such-part"),
        ("a pointer from code to a missing anchor", edit("services/demo/src/lib.rs", "guide.md#the-part", "guide.md#gone"), "no heading #gone there"),
        ("a missing include anchor", edit("docs/src/guide.md", "lib.rs:part", "lib.rs:nope"), "no ANCHOR/ANCHOR_END pair named nope"),
        ("an unknown make target", edit("README.md", "`make run`", "`make ruin`"), "the Makefile has no target ruin"),
        ("an unknown script", edit("README.md", "`scripts/dev/run.sh`", "`scripts/walk.sh`"), "scripts/walk.sh: no such script"),
        ("an unknown path", edit("README.md", "`services/demo/src/lib.rs`", "`services/demo/src/gone.rs`"), "no such file or folder"),
        ("an undocumented variable read by scripts/dev/run.sh", edit("scripts/dev/run.sh", "${RUN_PORT:-8080}", "${RUN_PORT:-8080} ${RUN_HOST:-x}"), "RUN_HOST (read by scripts/dev/run.sh) is not in the configuration reference"),
        ("an undocumented variable a binary reads (clap's env)", edit("services/demo/src/lib.rs", "pub fn part() {}", "#[arg(long, env = \"DEMO_LEVEL\")]\npub fn part() {}"), "DEMO_LEVEL (read by services/demo/src/lib.rs (clap env)) is not in the configuration reference"),
        ("a variable the docs invent", edit("README.md", "`RUN_PORT=8081`", "`RUN_PORTS=8081`"), "RUN_PORTS: no file outside the docs names this variable"),
        ("a curl without -f in an example", edit("docs/src/guide.md", "curl -fsS", "curl -sS"), "curl without -f"),
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="check-docs-self-test.") as tmp:
        root = fixture(Path(tmp), port)
        baseline = check(root, None, quiet=True)
        if baseline:
            print("self-test: the unbroken fixture fails:\n  " + "\n  ".join(baseline), file=sys.stderr)
            return 1
        originals = {p: p.read_text() for p in root.rglob("*") if p.is_file()}
        for what, (rel, old, new), expected in cases:
            path = root / rel
            assert old in path.read_text(), (rel, old)
            path.write_text(path.read_text().replace(old, new))
            errors = check(root, None, quiet=True)
            hit = [e for e in errors if expected in e]
            if hit:
                print(f"ok: {what} is reported: {hit[0]}")
            else:
                print(f"FAILED: {what} is not reported (expected '{expected}'; got {errors})", file=sys.stderr)
                failures += 1
            for p, text in originals.items():
                p.write_text(text)
        # The examples: passing, then failing, against a stand-in system.
        passing = run_examples(root, "selftest", False, f"http://127.0.0.1:{port}/", 30, Path(tmp))
        if passing != 0:
            print("FAILED: the unbroken example did not pass", file=sys.stderr)
            failures += 1
        guide = root / "docs/src/guide.md"
        guide.write_text(guide.read_text().replace("/src/SUMMARY.md", "/src/no-such-page.md"))
        failing = run_examples(root, "selftest", False, f"http://127.0.0.1:{port}/", 30, Path(tmp))
        if failing == 0:
            print("FAILED: an example that fails (a 404 to curl -f) passed", file=sys.stderr)
            failures += 1
        else:
            print("ok: a failing example block is reported (above: the curl's 404 and the block's file and line)")
    if failures:
        print(f"self-test: {failures} breakage(s) not reported", file=sys.stderr)
        return 1
    print("self-test: every breakage is reported")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check")
    p_check.add_argument("--bin-dir", type=Path)
    p_ex = sub.add_parser("examples")
    p_ex.add_argument("--kind", required=True)
    p_ex.add_argument("--print", action="store_true")
    p_ex.add_argument("--ready-url", default="http://127.0.0.1:8080/healthz")
    p_ex.add_argument("--ready-timeout", type=float, default=1800)
    sub.add_parser("self-test")
    args = parser.parse_args()
    root = args.root.resolve()
    if args.command == "check":
        bin_dir = args.bin_dir or (Path(os.environ["CARGO_TARGET_DIR"]) / "debug" if os.environ.get("CARGO_TARGET_DIR") else None)
        errors = check(root, bin_dir)
        if errors:
            print("\n".join(errors), file=sys.stderr)
            print(f"check-docs: {len(errors)} problem(s)", file=sys.stderr)
            return 1
        print("check-docs: links, names, the configuration reference, includes and example blocks agree with the tree")
        return 0
    if args.command == "examples":
        return run_examples(root, args.kind, args.print, args.ready_url, args.ready_timeout)
    return self_test()


if __name__ == "__main__":
    sys.exit(main())
