"""The package's shape, which the README's Layout section promises: one job per module (no module
over 300 lines), no import cycles, the run-folder names spelled only in layout.py; and a resume
that reads each checkpoint file once."""
import ast
import builtins
import os
import re
import runpy
import shutil

from conftest import CONFIGS, REPO, TINY, quick

PACKAGE = os.path.join(REPO, "paddle_gan")


def _sources(*folders):
    for folder in folders:
        for d, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = [x for x in dirs if x != "third_party"]  # vendored code is not ours
            yield from (os.path.join(d, f) for f in files if f.endswith(".py"))


def test_no_module_is_over_300_lines():
    long = {os.path.relpath(p, REPO): n for p in _sources("paddle_gan", "tools")
            if (n := len(open(p).read().splitlines())) > 300}
    assert long == {}


def _module_name(path):
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _imports(path):
    """Every paddle_gan module `path` imports, at the top or inside a function."""
    name, is_pkg = _module_name(path), path.endswith("__init__.py")
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from . import x` imports the module x
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}".replace(".", os.sep) in _ALL else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("paddle_gan")}


_ALL = {_module_name(p).replace(".", os.sep) for p in _sources("paddle_gan")}


def test_no_import_cycles():
    graph = {_module_name(p): _imports(p) - {_module_name(p)} for p in _sources("paddle_gan")}
    graph = {m: {d for d in deps if d in graph and d != "paddle_gan"} for m, deps in graph.items()}
    state, cycles = {}, []

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_run_folder_names_are_spelled_only_in_layout():
    pattern = re.compile(r'"checkpoints"|"samples"|metrics.jsonl|"vdl"|train\.lock"|"config\.yaml"')
    spelled = [f"{os.path.relpath(p, REPO)}:{i}" for p in _sources("paddle_gan", "tools")
               if not p.endswith(os.path.join("paddle_gan", "layout.py"))
               for i, line in enumerate(open(p), 1) if pattern.search(line)]
    assert spelled == []


def test_resume_reads_each_checkpoint_file_once(tmp_path, monkeypatch):
    run = tmp_path / "run"
    quick(run, "train.steps=4", "train.save_every=2", "train.keep_checkpoints=0")
    ckpt = str(run / "checkpoints" / "step_0000004")
    reads, real_open = [], builtins.open

    def counting_open(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and str(file).startswith(ckpt) and "r" in mode:
            reads.append(os.path.basename(str(file)))
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", counting_open)
    main = runpy.run_path(os.path.join(REPO, "tools", "train.py"))["main"]
    assert main(["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "--resume",
                 "-o", *TINY, "train.steps=6"]) == 0
    assert sorted(reads) == sorted(os.listdir(run / "checkpoints" / "step_0000004")), reads
    shutil.rmtree(run)
