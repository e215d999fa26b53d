#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ci/check-layout.py — the rules of the tree's layout, checked (make check).

1. Layers look down only. Each folder may include the headers of the
   folders below it that those offer to other layers (their interface
   headers), never a private one:
       sched/                                   the scheduler
       sync/  io/  observe/                     use sched/'s interface
       bridge/                                  also sync/'s
       adapters/, examples/                     the public API only
       bench/                                   also sched/ctx.h (the switch)
       fuzz/                                    any interface (the simulation
                                                implements sched/'s platform)
   tests/X/ may also include X's private headers (white-box tests mirror
   their sources). The public headers (include/) are open to everyone.
2. No file of sched/ names a symbol defined by sync/, bridge/, io/,
   adapters/ or fuzz/ (the scheduler knows no higher layer, and the
   simulation is chosen at link time behind sched/platform.h).
3. docs/ARCHITECTURE.md's file table lists exactly the files in the tree
   (every file of the source folders, each other folder as a row).
4. No library source file is over 800 lines and no library function over
   60 (signature to closing brace).
5. Every source file (C, C++, assembly, shell, Python, Go, Rust, make,
   CMake, TOML, pkg-config templates and the scripts without a suffix under
   ci/, .ci/ and fuzz/) names its licence in its first two lines:
   "SPDX-License-Identifier: MIT" (LICENSE holds the text).

Prints each violation and exits 1 when there is any; prints a one-line
summary otherwise. Run from anywhere: paths are taken from the script's
place in the tree.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each folder offers other layers.
INTERFACE = {
    "sched": {"sched/internal.h", "sched/platform.h", "sched/ctx.h"},
    "sync": {"sync/internal.h"},
    "io": set(),
    "observe": set(),
    "bridge": set(),
    "adapters": set(),
    "fuzz": {"fuzz/sim.h", "fuzz/harness.h"},
    "tests": {"tests/testutil.h", "tests/nudge.h",
              "tests/sync/sync_util.h",
              "tests/sync/chan_util.h"},
}
# Whose interface each folder may use (besides its own files and include/).
MAY_USE = {
    "sched": set(),
    "sync": {"sched"},
    "io": {"sched"},
    "observe": {"sched"},
    "bridge": {"sched", "sync"},
    "adapters": set(),
    "examples": set(),
    "bench": {"sched"},
    "fuzz": {"sched", "sync", "io", "observe", "bridge"},
    "tests": {"sched", "sync", "io", "observe", "bridge", "fuzz", "tests"},
}
LIBRARY = ["sched", "sync", "io", "observe", "bridge", "adapters"]
# Folders whose every file the file table lists.
LISTED = LIBRARY + ["include", "fuzz", "ci", ".ci"]
# Folders of fuzz/ holding data (inputs), listed as one row each.
DATA_DIRS = ["fuzz/corpus/", "fuzz/regress/", "fuzz/seeds/"]
MAX_FILE_LINES = 800
SPDX = "SPDX-License-Identifier: MIT"
SOURCE_RE = re.compile(r"(\.(c|h|S|cc|cpp|hpp|sh|py|go|rs|mk|toml|in|cmake)"
                       r"|(^|/)(Makefile|CMakeLists\.txt)"
                       r"|^(ci|\.ci|fuzz)/[^./]+)$")
# Data that only looks like source by its path: inputs and measurements.
NOT_SOURCE = ("bench/results/", "fuzz/corpus/", "fuzz/regress/",
              "fuzz/seeds/")
MAX_FUNC_LINES = 60

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
TOKEN_RE = re.compile(r"\b(?:coev__|COEV__|sim_)[A-Za-z0-9_]*\b")


def tree_files():
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return sorted(p for p in out.split("\n")
                  if p and os.path.exists(os.path.join(ROOT, p)))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8",
              errors="replace") as f:
        return f.read()


def top(path):
    return path.split("/", 1)[0]


def resolve(src, inc):
    """The tree path an #include "inc" of src names, or None (system or
    public header)."""
    here = os.path.normpath(os.path.join(os.path.dirname(src), inc))
    for cand in (here, os.path.normpath(inc)):
        if os.path.exists(os.path.join(ROOT, cand)):
            return cand
    if os.path.exists(os.path.join(ROOT, "include", inc)):
        return None
    return None


def check_includes(files, errors):
    for src in files:
        if not re.search(r"\.(c|h|S)$", src):
            continue
        folder = top(src)
        if folder not in MAY_USE:
            continue
        for inc in INCLUDE_RE.findall(read(src)):
            hdr = resolve(src, inc)
            if hdr is None or top(hdr) == "include":
                continue
            hfold = top(hdr)
            if hfold == folder and folder != "tests":
                continue
            if folder == "tests":
                mirror = src.split("/")[1] if src.count("/") >= 2 else ""
                if (hfold == mirror or hdr in INTERFACE["tests"]
                        or os.path.dirname(hdr) == os.path.dirname(src)):
                    continue
            if hfold in MAY_USE[folder] and hdr in INTERFACE.get(hfold, ()):
                continue
            why = ("a private header of " + hfold + "/"
                   if hfold in MAY_USE[folder] else
                   "a header of " + hfold + "/, a layer " + folder +
                   "/ may not use")
            errors.append(f"{src}: includes {hdr}: {why}")


def higher_symbols(files):
    """Symbols that sync/, io/, bridge/, adapters/ and fuzz/ define: those
    their headers declare, and the non-static functions and globals their
    sources define at the start of a line."""
    syms = set()
    defn = re.compile(r"^(?!static\b)[A-Za-z_][^;{}()]*?\b"
                      r"((?:coev__|COEV__|sim_)\w+)\s*(?:\(|=|\[|;)", re.M)
    for f in files:
        if (top(f) not in ("sync", "io", "bridge", "adapters", "fuzz")
                or not re.search(r"\.(c|h)$", f)):
            continue
        text = read(f)
        if f.endswith(".h"):
            syms.update(TOKEN_RE.findall(text))
            syms.update(re.findall(r"#\s*define\s+(\w+)", text))
        elif f.endswith(".c"):
            syms.update(m.group(1) for m in defn.finditer(text))
    return syms


def check_symbols(files, errors):
    sched = [f for f in files if top(f) == "sched"
             and re.search(r"\.(c|h|S)$", f)]
    own = set()
    for f in sched:
        if f.endswith(".h"):
            own.update(TOKEN_RE.findall(read(f)))
            own.update(re.findall(r"#\s*define\s+(\w+)", read(f)))
    foreign = higher_symbols(files) - own
    for f in sched:
        for n, line in enumerate(read(f).split("\n"), 1):
            for tok in TOKEN_RE.findall(line):
                if tok in foreign:
                    errors.append(f"{f}:{n}: names {tok}, a symbol of a "
                                  "higher layer or of the simulation")


def check_table(files, errors):
    doc = read("docs/ARCHITECTURE.md")
    m = re.search(r"<!-- file-table -->(.*?)<!-- /file-table -->", doc, re.S)
    if not m:
        errors.append("docs/ARCHITECTURE.md: no <!-- file-table --> section")
        return
    rows = re.findall(r"^\|\s*`([^`]+)`", m.group(1), re.M)
    listed = set(rows)
    for r in sorted(listed):
        if not os.path.exists(os.path.join(ROOT, r.rstrip("/"))):
            errors.append(f"docs/ARCHITECTURE.md: file table lists {r}, "
                          "which is not in the tree")
    want = set()
    for f in files:
        if any(f.startswith(d) for d in DATA_DIRS):
            want.add(next(d for d in DATA_DIRS if f.startswith(d)))
        elif top(f) in LISTED and "/" in f:
            want.add(f)
        else:
            want.add(top(f) + "/" if "/" in f else f)
    for w in sorted(want - listed):
        errors.append(f"docs/ARCHITECTURE.md: file table misses {w}")


def functions(text):
    """(name, first line, length) of each function defined at column 0
    with its opening brace alone on a line (the project's style)."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i] == "{":
            j = i - 1
            while (j > 0 and lines[j - 1].strip()
                   and not lines[j - 1].startswith(("}", "#", "/*", " *"))
                   and not lines[j - 1].rstrip().endswith((";", "*/"))):
                j -= 1
            k, depth = i, 0
            while k < len(lines):
                depth += lines[k].count("{") - lines[k].count("}")
                if depth == 0 and k > i:
                    break
                k += 1
            name = re.search(r"(\w+)\s*\(", " ".join(lines[j:i]))
            yield (name.group(1) if name else "?"), j + 1, k - j + 1
            i = k
        i += 1


def check_sizes(files, errors):
    for f in files:
        lib = top(f) in LIBRARY or re.match(r"fuzz/sim\w*\.c$", f)
        if not lib or not re.search(r"\.(c|h)$", f):
            continue
        text = read(f)
        n = text.count("\n")
        if n > MAX_FILE_LINES:
            errors.append(f"{f}: {n} lines (at most {MAX_FILE_LINES})")
        if f.endswith(".c"):
            for name, line, length in functions(text):
                if length > MAX_FUNC_LINES:
                    errors.append(f"{f}:{line}: {name} is {length} lines "
                                  f"(at most {MAX_FUNC_LINES})")


def check_licence(files, errors):
    for f in files:
        if not SOURCE_RE.search(f) or f.startswith(NOT_SOURCE):
            continue
        if SPDX not in "\n".join(read(f).split("\n", 2)[:2]):
            errors.append(f"{f}: no \"{SPDX}\" in its first two lines")


def main():
    files = tree_files()
    errors = []
    check_includes(files, errors)
    check_symbols(files, errors)
    check_table(files, errors)
    check_sizes(files, errors)
    check_licence(files, errors)
    for e in errors:
        print("layout: " + e)
    if errors:
        print(f"layout: {len(errors)} violation(s)")
        return 1
    print(f"layout: {len(files)} files: layers, file table, sizes and "
          "licence lines as the rules say")
    return 0


if __name__ == "__main__":
    sys.exit(main())
