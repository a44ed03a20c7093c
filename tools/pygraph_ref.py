#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference import-graph builder (stdlib `ast` only) with the rules of src/pygraph/pygraph.h.

Prints the same `SRC -> DST` / `SRC` lines as tools/pygraph-dump. Files Python cannot parse are
written to --unparsable FILE (one `PATH<TAB>REASON` line each, default: stderr) and listed as
nodes without edges; the comparison ignores their own lines.
"""
import argparse
import ast
import os
import stat
import sys

DEFAULT_SKIP = [".git", ".venv", "venv", "__pycache__", "node_modules", "build", "dist",
                "sandbox_data"]


def walk(root, skip):
    """Repo-relative .py files and directories (BFS, no directory symlinks)."""
    files, dirs = [], [""]
    root_real = os.path.realpath(root)
    i = 0
    while i < len(dirs):
        rel = dirs[i]
        i += 1
        full = os.path.join(root, rel) if rel else root
        try:
            entries = list(os.scandir(full))
        except OSError:
            continue
        for de in entries:
            name = de.name
            crel = f"{rel}/{name}" if rel else name
            if de.is_dir(follow_symlinks=False):
                if name in skip or name == "site-packages":
                    continue
                if os.path.lexists(os.path.join(de.path, "pyvenv.cfg")):
                    continue
                dirs.append(crel)
            elif name.endswith(".py") and len(name) > 3:
                if de.is_symlink():
                    try:
                        if not stat.S_ISREG(os.stat(de.path).st_mode):
                            continue
                    except OSError:
                        continue
                    real = os.path.realpath(de.path)
                    if root_real != "/" and not real.startswith(root_real + "/"):
                        continue
                elif not de.is_file(follow_symlinks=False):
                    continue
                files.append(crel)
    return sorted(files, key=lambda s: s.encode("utf-8", "surrogateescape")), dirs


class Tree:
    def __init__(self, files, dirs):
        self.files = files
        self.index = {f: i for i, f in enumerate(files)}
        self.dirs = set(dirs)
        src = "src"
        self.src = None
        if src in self.dirs and f"{src}/__init__.py" not in self.index and any(
                f.startswith("src/") for f in files):
            self.src = src

    def init_of(self, d):
        return self.index.get(f"{d}/__init__.py" if d else "__init__.py")

    def find_spec(self, name, dirs):
        portions = []
        for d in dirs:
            sub = f"{d}/{name}" if d else name
            if name and sub in self.dirs and self.init_of(sub) is not None:
                return ("pkg", self.init_of(sub), [sub])
            mod = self.index.get(sub + ".py") if name else None
            if mod is not None:
                return ("mod", mod, [])
            if name and sub in self.dirs and len(portions) < 3:
                portions.append(sub)
        if portions:
            return ("ns", None, portions)
        return None

    def beneath(self, d):
        prefix = d + "/"
        return [i for i, f in enumerate(self.files) if f.startswith(prefix)]


def is_test(base):
    return base == "conftest.py" or (len(base) >= 8 and (
        base.startswith("test_") or base.endswith("_test.py")))


def file_context(tree, rel):
    base = rel.rsplit("/", 1)[-1]
    d = rel.rsplit("/", 1)[0] if "/" in rel else ""
    path = []
    base_dir = ""
    if is_test(base):
        while d and tree.init_of(d) is not None:
            d = d.rsplit("/", 1)[0] if "/" in d else ""
        base_dir = d
        path.append(d)
    elif tree.src and rel.startswith(tree.src + "/"):
        base_dir = tree.src
    for p in ["", tree.src]:
        if p is not None and p not in path:
            path.append(p)
    parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
    if base_dir:
        parent = parent[len(base_dir) + 1:] if parent != base_dir else ""
    return path, parent.replace("/", ".")


def resolve_relative(package, level, module):
    if not package:
        return None
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        return None
    base = bits[0]
    return f"{base}.{module}" if module else base


def plain_str(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def records(tree_ast):
    """(kind, module, level, package, names, star) like pyscan's records."""
    for node in ast.walk(tree_ast):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield ("import", a.name, 0, None, [], False)
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            star = names == ["*"]
            yield ("from", node.module or "", node.level or 0, None, [] if star else names, star)
        elif isinstance(node, ast.Call):
            f = node.func
            dunder = isinstance(f, ast.Name) and f.id == "__import__"
            impmod = (isinstance(f, ast.Name) and f.id == "import_module") or (
                isinstance(f, ast.Attribute) and f.attr == "import_module"
                and isinstance(f.value, ast.Name) and f.value.id == "importlib")
            if not (dunder or impmod) or not node.args or not plain_str(node.args[0]):
                continue
            name = node.args[0].value
            if "\\" in name or not name:
                continue
            level = len(name) - len(name.lstrip("."))
            pkg = None
            if level:
                if dunder or len(node.args) < 2 or not plain_str(node.args[1]):
                    continue
                pkg = node.args[1].value
                if not pkg:
                    continue
            yield ("importlib", name[level:], level, pkg, [], False)


def edges_of(tree, rel, tree_ast):
    path, package = file_context(tree, rel)
    self_id = tree.index[rel]
    out = set()

    def chain(name):
        dirs, last = path, None
        parts = name.split(".")
        for k, part in enumerate(parts):
            spec = tree.find_spec(part, dirs)
            if spec is None:
                return False, last
            last = spec
            if spec[1] is not None:
                out.add(spec[1])
            if k == len(parts) - 1:
                return True, last
            if spec[0] == "mod":
                return False, last
            dirs = spec[2]
        return True, last

    for kind, module, level, pkg, names, star in records(tree_ast):
        name = module
        if level:
            name = resolve_relative(pkg if pkg is not None else package, level, module)
            if name is None:
                continue
        elif name == "__future__":
            continue
        if not name:
            continue
        whole, last = chain(name)
        if kind != "from" or not whole:
            continue
        if star:
            if last[0] == "ns":
                for d in last[2]:
                    out.update(tree.beneath(d))
        elif last[0] in ("pkg", "ns"):
            for n in names:
                spec = tree.find_spec(n, last[2])
                if spec is not None and spec[1] is not None:
                    out.add(spec[1])
    out.discard(self_id)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root")
    ap.add_argument("--skip", help="colon-separated directory names (replaces the default)")
    ap.add_argument("--unparsable", help="write unparsable files here (default: stderr)")
    args = ap.parse_args()
    skip = args.skip.split(":") if args.skip else DEFAULT_SKIP
    files, dirs = walk(args.root, skip)
    tree = Tree(files, dirs)
    bad = []
    lines = []
    for rel in files:
        try:
            with open(os.path.join(args.root, rel), "rb") as fh:
                data = fh.read()
            tree_ast = ast.parse(data, filename=rel)
            deps = edges_of(tree, rel, tree_ast)
        except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError,
                OSError) as e:
            bad.append(f"{rel}\t{type(e).__name__}: {e}".replace("\n", " "))
            deps = []
        if not deps:
            lines.append(rel)
        lines.extend(f"{rel} -> {files[d]}" for d in deps)
    out = sys.stdout
    out.write("".join(line + "\n" for line in lines))
    if args.unparsable:
        with open(args.unparsable, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("".join(b + "\n" for b in bad))
    else:
        for b in bad:
            print(f"pygraph_ref: unparsable: {b}", file=sys.stderr)


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    main()
