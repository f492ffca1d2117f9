"""The package's shape, which the README's Layout section promises: one job per module (no module
over 300 lines), no import cycles, the run-folder names spelled only in run/layout.py, no variant
name compared outside the module that defines it, each choice list equal to the table that
implements it; and a resume that reads each checkpoint file once."""
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
               if not p.endswith(os.path.join("paddle_gan", "run", "layout.py"))
               for i, line in enumerate(open(p), 1) if pattern.search(line)]
    assert spelled == []


# a variant's name in quotes, as code would compare it: only its definition may spell it
VARIANTS = {"wgan_gp": "gan/losses.py", "nonsaturating": "gan/losses.py", "hinge": "gan/losses.py",
            "translation": "gan/augment.py", "cutout": "gan/augment.py",
            "lsgan": "gan/losses.py", "acgan": "gan/models/heads.py", "projection": "gan/models/heads.py",
            "dcgan_dense": "config/models.py", "mlp": "config/models.py", "cbn": "config/models.py",
            "concat": "config/models.py", "resnet": "config/models.py"}


def test_no_variant_name_is_compared_outside_its_definition():
    found = []
    for p in _sources("paddle_gan", "tools"):
        rel = os.path.relpath(p, PACKAGE)
        for i, line in enumerate(open(p), 1):
            code = line.split("#")[0]
            for name, home in VARIANTS.items():
                if re.search(rf"""==\s*["']{name}["']|["']{name}["']\s*(==|!=)|in \(["']{name}["']""", code) \
                        and rel != home:
                    found.append(f"{rel}:{i}: {name}")
    assert found == []


def test_each_choice_list_is_the_table_that_implements_it():
    from paddle_gan import config, data, metrics
    from paddle_gan.gan import augment, precision
    from paddle_gan.gan.losses import LOSSES
    from paddle_gan.gan.models import NETWORKS, layers
    from paddle_gan.gan.models.heads import HEADS

    assert list(config.DATASET_NAMES) == list(data.LOADERS)
    assert list(config.D_CONDS) == list(HEADS)
    assert config.choices.CLASSIFYING == {name: head.classifies for name, head in HEADS.items()}
    assert list(config.choices.DIFFAUG) == list(augment.AUGMENTS)
    assert list(config.INITS) == list(layers.INITS)
    assert list(config.models.G_CONDS) == list(layers.G_CONDS)
    assert list(config.AMP) == list(precision.PRECISIONS)
    assert list(config.EXTRACTORS) == ["auto", *metrics.EXTRACTOR_MAKERS]
    rng = np.random.default_rng(0)
    scored = metrics.scores_from_features(rng.normal(size=(40, 4)), rng.normal(size=(40, 4)),
                                          rng.dirichlet(np.ones(3), 40), "x", kid_subsets=2, kid_subset_size=10)
    assert {f"{m}_x" for m in config.EVAL_METRICS} <= set(scored)  # train.eval_metric can pick each
    assert list(config.MODELS) == list(NETWORKS)
    for name, module in NETWORKS.items():  # each registered model has its file with both builders
        assert module.__name__.endswith(f".{name}") and callable(module.generator) and callable(module.discriminator)
    assert set(config.LABELLED) <= set(data.LOADERS)
    assert "nonsaturating" in LOSSES


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
