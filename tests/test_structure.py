"""The package's shape, which the README's Layout section promises: one job per module (no module
over 300 lines), no import cycles between modules or between sub-packages, the run-folder names
spelled only in run/layout.py, no registered component's name compared outside the module that
defines it, every choice list its registry; and a resume that reads each checkpoint file once."""
import ast
import builtins
import os
import re
import shutil

import numpy as np

from conftest import tool, CONFIGS, REPO, TINY, quick

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


def _node(module):
    """The part of the package a module belongs to: its sub-package (config, data, gan, metrics, run,
    commands, ops, zoo), or the top-level module itself."""
    parts = module.split(".")
    if len(parts) == 1:  # paddle_gan/__init__.py
        return module
    return parts[1] if len(parts) > 2 or os.path.isdir(os.path.join(PACKAGE, parts[1])) else module


def _cycles(graph):
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
    return cycles


def test_no_import_cycles_between_modules_or_between_packages():
    """No module imports itself through others, at the top or inside a function; and no sub-package
    (or top-level module) imports one that imports it back: config, data, gan, metrics, run and
    commands form layers."""
    graph = {_module_name(p): _imports(p) - {_module_name(p)} for p in _sources("paddle_gan")}
    graph = {m: {d for d in deps if d in graph and d != "paddle_gan"} for m, deps in graph.items()}
    assert _cycles(graph) == []
    packages = {}
    for m, deps in graph.items():
        packages.setdefault(_node(m), set()).update(_node(d) for d in deps if _node(d) != _node(m))
    assert _cycles(packages) == []


def test_run_folder_names_are_spelled_only_in_layout():
    pattern = re.compile(r'"checkpoints"|"samples"|metrics.jsonl|"vdl"|train\.lock"|"config\.yaml"')
    spelled = [f"{os.path.relpath(p, REPO)}:{i}" for p in _sources("paddle_gan", "tools")
               if not p.endswith(os.path.join("paddle_gan", "run", "layout.py"))
               for i, line in enumerate(open(p), 1) if pattern.search(line)]
    assert spelled == []


def _home(component) -> str:
    """The module a registered component was defined in (for a value, the module of its function)."""
    for attr in ("__module__", "fn", "load", "d"):
        obj = component if attr == "__module__" else getattr(component, attr, None)
        module = getattr(obj, "__module__", None)
        if module and module.startswith("paddle_gan"):
            rel = module.replace(".", os.sep).removeprefix("paddle_gan" + os.sep)
            return os.path.join(rel, "__init__.py") if os.path.isdir(os.path.join(PACKAGE, rel)) else rel + ".py"
    raise AssertionError(f"no home for {component!r}")


def _variants():
    """{name: the file that defines it} of every registered component whose name code could compare."""
    from paddle_gan import data, metrics
    from paddle_gan.gan import augment, losses, objective, precision
    from paddle_gan.gan.models import heads, layers

    found = {}
    for registry in (layers.MODELS, layers.INITS, layers.G_CONDS, heads.HEADS, losses.LOSSES, augment.AUGMENTS,
                     objective.TERMS, precision.PRECISIONS, data.DATASETS, metrics.METRICS, metrics.EXTRACTORS):
        found.update({name: _home(component) for name, component in registry.items() if name})
    del found["paddle"]  # model.init's framework default; train.conv has a choice of that name too (its own)
    return found


def test_no_variant_name_is_compared_outside_its_definition():
    variants = _variants()
    assert {"dcgan_dense", "wgan_gp", "cutout", "acgan", "bfloat16", "image_folder", "cbn", "prdc"} <= set(variants)
    found = []
    for p in _sources("paddle_gan", "tools"):
        rel = os.path.relpath(p, PACKAGE)
        for i, line in enumerate(open(p), 1):
            code = line.split("#")[0]
            for name, home in variants.items():
                if re.search(rf"""==\s*["']{name}["']|["']{name}["']\s*(==|!=)|in \(["']{name}["']""", code) \
                        and rel != home:
                    found.append(f"{rel}:{i}: {name}")
    assert found == []


def test_every_choice_list_is_its_registry():
    """A key that chooses a component lists the family's registry itself, never a copy; every
    registered component has what its family needs."""
    from paddle_gan import config, data, metrics
    from paddle_gan.gan import augment, losses, precision
    from paddle_gan.gan.models import MODELS, heads, layers

    choosers = {"data.name": data.DATASETS, "model.name": MODELS, "model.init": layers.INITS,
                "model.d_cond": heads.HEADS, "train.loss": losses.LOSSES, "train.diffaug": augment.AUGMENTS,
                "train.amp": precision.PRECISIONS, "train.eval_metrics": metrics.METRICS}
    for key, registry in choosers.items():
        section, name = key.split(".")
        assert config.keys(section)[name].choices is registry and registry.chooser == key, key
    assert config.model_keys("dcgan")["g_cond"].choices is layers.G_CONDS
    for name, model in MODELS.items():
        assert issubclass(model, layers.Model) and model.__module__.endswith(f".{name}"), name
    assert "nonsaturating" in losses.LOSSES and set(data.DATASETS) >= {"mnist", "fashion_mnist", "cifar10"}
    for m in metrics.METRICS.values():  # train.eval_metric picks among the scores, best/ by their direction
        assert m.scores and isinstance(m.lower_is_better, bool) and m.panels


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
    assert tool("train", *["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "--resume",
                 "-o", *TINY, "train.steps=6"]) == 0
    assert sorted(reads) == sorted(os.listdir(run / "checkpoints" / "step_0000004")), reads
    shutil.rmtree(run)
