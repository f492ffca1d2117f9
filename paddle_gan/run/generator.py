"""A generator rebuilt from a checkpoint folder alone (the tools' --checkpoint), and the class a
command line asks of it."""
from __future__ import annotations

import dataclasses
import os
import sys

from ..bounds import check_model
from ..errors import CheckpointError, ConfigError, printable
from ..gan.models import build_generator
from ..gan.state import check_fits, layer_state
from . import layout
from .checkpoint import generator_file, read_generator_state
from .checkpoint_history import list_checkpoints
from .state_json import checkpoint_config, read_state


@dataclasses.dataclass
class LoadedGenerator:
    """A generator rebuilt from a checkpoint folder alone, in eval mode, and what it is."""
    G: object
    cfg: object  # the run's Config
    which: str  # "G_ema" (the EMA generator, used when the checkpoint has one) or "G"
    step: int
    classes: list  # names of the labels of a conditional model (model.num_classes of them), else []


def find_checkpoint(path: str, note=None) -> str:
    """The checkpoint folder a tool was given: a checkpoint folder as it is; a run folder (or its
    checkpoints/) its newest checkpoint, said in one line to note (default: stderr). Anything else
    is returned as given, for open_generator to name what is wrong with it."""
    norm = os.path.normpath(path)
    run = os.path.dirname(norm) if os.path.basename(norm) == layout.CHECKPOINTS else norm
    if not (os.path.isdir(path) and layout.is_run(run or ".")) or os.path.isfile(os.path.join(path, "state.json")):
        return path
    found = list_checkpoints(run or ".")
    if not found:
        raise CheckpointError(f"{path}: a run folder without checkpoints yet (train it, or give a checkpoint folder)")
    (note or (lambda m: print(m, file=sys.stderr, flush=True)))(
        printable(f"{path} is a run folder: using its newest checkpoint, {found[-1][1]} (step {found[-1][0]})"))
    return found[-1][1]


def open_generator(ckpt: str, raw: bool = False) -> LoadedGenerator:
    """The checkpoint's EMA generator if it has one (train.ema), else G; raw=True: G always."""
    meta = read_state(ckpt, verify=False)
    cfg = checkpoint_config(meta)
    which = "G_ema" if generator_file(meta, "G_ema") and not raw else "G"
    if generator_file(meta, which) is None:
        raise CheckpointError(f"{ckpt}: holds no raw generator G (a generator-only checkpoint of its EMA generator: "
                              f"leave out --raw)")
    check_model(cfg.model, training=False)  # a state.json may claim any widths: counted before a weight is made
    G = build_generator(cfg.model)
    state = read_generator_state(ckpt, meta, which)  # verified as it is read
    check_fits(os.path.join(ckpt, generator_file(meta, which)), state, layer_state(G))
    G.set_state_dict(state)
    G.eval()
    classes = meta.get("classes") or [str(i) for i in range(cfg.model.num_classes)]
    return LoadedGenerator(G, cfg, which, meta["step"], classes)


def class_index(spec: str, classes: list[str]) -> int:
    """A class given on the command line, by index or by name (any case: sneaker is Sneaker), as an
    index; ConfigError if it is neither (the message lists the classes)."""
    if not classes:
        raise ConfigError(f"--class {spec}: this generator is unconditional (model.num_classes is 0)")
    if spec in classes:
        return classes.index(spec)
    folded = [c.casefold() for c in classes]
    if folded.count(spec.casefold()) == 1:
        return folded.index(spec.casefold())
    if spec.isascii() and spec.isdigit() and int(spec) < len(classes):  # ("²".isdigit(), but int("²") fails)
        return int(spec)
    shown = ", ".join(f"{i}={c}" for i, c in enumerate(classes))
    raise ConfigError(f"--class {spec}: not a class of this generator ({shown})")


def truncate(G, psi: float, option: str = "--truncation") -> None:
    """Pull the styles of a G with a mapping network towards their running mean w_avg: psi = 1 as
    trained, 0 the average image for every z. ConfigError for another psi or a G without one."""
    if not 0.0 <= psi <= 1.0:
        raise ConfigError(f"{option} must be in [0, 1] (1 = as trained), got {psi}")
    if psi != 1.0 and not hasattr(G, "truncation_psi"):
        raise ConfigError(f"{option}: this generator has no mapping network to truncate (a stylegan2 model has)")
    if hasattr(G, "truncation_psi"):
        G.truncation_psi = psi
