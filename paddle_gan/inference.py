"""Putting a trained generator to use: rebuilding it from a checkpoint folder alone (open_generator),
generating images and sample grids, latent interpolation, and export for inference."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import paddle

from . import seeds
from .images import make_grid


@dataclasses.dataclass
class Generator:
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
    import sys

    from .errors import CheckpointError, printable
    from .run import layout
    from .run.checkpoint_history import list_checkpoints

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


def open_generator(ckpt: str, raw: bool = False) -> Generator:
    """The checkpoint's EMA generator if it has one (train.ema), else G; raw=True: G always."""
    from .gan.fit import layer_state
    from .gan.models import build_generator
    from .run.checkpoint import check_fits, generator_file, read_generator_state
    from .errors import CheckpointError
    from .run.state_json import checkpoint_config, read_state

    meta = read_state(ckpt, verify=False)
    cfg = checkpoint_config(meta)
    which = "G_ema" if generator_file(meta, "G_ema") and not raw else "G"
    if generator_file(meta, which) is None:
        raise CheckpointError(f"{ckpt}: holds no raw generator G (a generator-only checkpoint of its EMA generator: "
                              f"leave out --raw)")
    from .bounds import check_model

    check_model(cfg.model, training=False)  # a state.json may claim any widths: counted before a weight is made
    G = build_generator(cfg.model)
    state = read_generator_state(ckpt, meta, which)  # verified as it is read
    check_fits(os.path.join(ckpt, generator_file(meta, which)), state, layer_state(G))
    G.set_state_dict(state)
    G.eval()
    classes = meta.get("classes") or [str(i) for i in range(cfg.model.num_classes)]
    return Generator(G, cfg, which, meta["step"], classes)


def generate(G, z: np.ndarray, labels: np.ndarray | None = None, batch: int = 256, on_batch=None) -> np.ndarray:
    """G(z) (G(z, labels) for a conditional G) in eval mode (BatchNorm running statistics) without
    touching training state. on_batch(n) is called as each batch of n images is done."""
    was_training = G.training
    G.eval()
    out = []
    try:
        with paddle.no_grad():
            for i in range(0, len(z), batch):
                args = [paddle.to_tensor(z[i:i + batch])]
                if labels is not None:
                    args.append(paddle.to_tensor(np.asarray(labels[i:i + batch], np.int64)))
                out.append(G(*args).numpy())
                if on_batch:
                    on_batch(len(out[-1]))
    finally:
        if was_training:
            G.train()
    return np.concatenate(out)


def sample_grid(G, z: np.ndarray, plan, scale: int = 1) -> np.ndarray:
    """The uint8 grid of G's images for z, laid out as the labels plan says (gan/labels.py: one row
    per class for a conditional G, else as square as it gets), enlarged `scale` times: the sample
    grids of training and of tools/generate.py --grid."""
    z = plan.grid_noise(z)
    images = generate(G, z, plan.grid_labels(len(z)))
    return make_grid(images, nrow=plan.row_length(len(images)), scale=scale)


def sample_noise(seed: int, num: int, z_dim: int) -> np.ndarray:
    """The z of tools/generate.py: the same seed gives the same images."""
    return seeds.normal(seed, seeds.SAMPLE_NOISE, num, z_dim)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between z vectors a and b at fractions t (shape [T]) -> [T, z_dim].
    For Gaussian z it keeps the norm typical, where a straight line passes through low-norm z that
    the generator has rarely seen (White 2016)."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # (anti)parallel to float precision: a straight line is the same path
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolation_z(seed: int, strips: int, steps: int, z_dim: int) -> np.ndarray:
    """[strips, steps, z_dim]: each strip walks by slerp from one random z to another."""
    ends = sample_noise(seed, 2 * strips, z_dim)
    t = np.linspace(0.0, 1.0, steps)
    return np.stack([slerp(ends[2 * i], ends[2 * i + 1], t) for i in range(strips)])


def class_index(spec: str, classes: list[str]) -> int:
    """A class given on the command line, by index or by name (any case: sneaker is Sneaker), as an
    index; ConfigError if it is neither (the message lists the classes)."""
    from .errors import ConfigError

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
