"""Putting a trained generator to use: rebuilding it from a checkpoint folder alone (open_generator),
generating images and sample grids, latent interpolation, and export for inference."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import paddle
import paddle.nn.functional as F

from . import seeds
from .files import atomic_write_text
from .images import make_grid


@dataclasses.dataclass
class Generator:
    """A generator rebuilt from a checkpoint folder alone, in eval mode, and what it is."""
    G: object
    cfg: object  # the run's Config
    which: str  # "G_ema" (the EMA generator, used when the checkpoint has one) or "G"
    step: int
    classes: list  # names of the labels of a conditional model (model.num_classes of them), else []


def open_generator(ckpt: str, raw: bool = False) -> Generator:
    """The checkpoint's EMA generator if it has one (train.ema), else G; raw=True: G always."""
    from .gan.models import build_generator
    from .run.checkpoint import read_state_dict
    from .run.state_json import STATE_DICTS, checkpoint_config, read_state

    meta = read_state(ckpt, verify=False)
    cfg = checkpoint_config(meta)
    which = "G_ema" if STATE_DICTS["G_ema"] in meta["files"] and not raw else "G"
    G = build_generator(cfg.model)
    G.set_state_dict(read_state_dict(ckpt, meta, STATE_DICTS[which]))  # verified as it is read
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
    """A class given on the command line, by index or by name, as an index; ConfigError if it is
    neither (the message lists the classes)."""
    from .errors import ConfigError

    if not classes:
        raise ConfigError(f"--class {spec}: this generator is unconditional (model.num_classes is 0)")
    if spec in classes:
        return classes.index(spec)
    if spec.lstrip("-").isdigit() and 0 <= int(spec) < len(classes):
        return int(spec)
    shown = ", ".join(f"{i}={c}" for i, c in enumerate(classes))
    raise ConfigError(f"--class {spec}: not a class of this generator ({shown})")


def _as_uint8(x):
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C] in 0..255. (Clamped with hardtanh before the
    scaling: paddle.clip with number bounds made paddle.jit.save print "static graph(PIR) not support
    input out tensor" on every export.)"""
    return paddle.round((F.hardtanh(x, -1.0, 1.0) + 1.0) * 127.5).astype("uint8").transpose([0, 2, 3, 1])


# One class per signature and output.
class _Exported(paddle.nn.Layer):
    """z [N, z_dim] float32 -> float [N, C, H, W] in [-1, 1]."""

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, z):
        return self.G(z)


class _ExportedUint8(_Exported):
    def forward(self, z):
        return _as_uint8(self.G(z))


class _ExportedConditional(_Exported):
    def forward(self, z, label):
        return self.G(z, label)


class _ExportedConditionalUint8(_Exported):
    def forward(self, z, label):
        return _as_uint8(self.G(z, label))


def export_generator(G, cfg, out_dir: str, uint8: bool = False, source: str = "", classes=(),
                     which: str = "G") -> str:
    """paddle.jit.save the generator (eval mode) to out_dir/generator.*; describe it in export.json.
    Returns the path prefix to give paddle.jit.load or paddle.inference."""
    from paddle.static import InputSpec

    m = cfg.model
    os.makedirs(out_dir, exist_ok=True)
    G.eval()
    prefix = os.path.join(out_dir, "generator")
    layer = {(False, False): _Exported, (False, True): _ExportedUint8, (True, False): _ExportedConditional,
             (True, True): _ExportedConditionalUint8}[(bool(m.num_classes), uint8)](G)
    layer.eval()
    spec = [InputSpec([None, m.z_dim], "float32", "z")] + ([InputSpec([None], "int64", "label")] if m.num_classes else [])
    paddle.jit.save(layer, prefix, input_spec=spec)
    colours = "RGB" if m.channels == 3 else "grey"
    output = (f"uint8 [N, {m.img_size}, {m.img_size}, {m.channels}] in 0..255 (HWC, {colours})" if uint8 else
              f"float32 [N, {m.channels}, {m.img_size}, {m.img_size}] in [-1, 1] (CHW, {colours})")
    inputs = f"z: float32 [N, {m.z_dim}], z ~ N(0, I)"
    if m.num_classes:
        inputs += f"; label: int64 [N] in 0..{m.num_classes - 1}, the class of each image"
    info = {"input": inputs, "output": output, "load": f"paddle.jit.load('{prefix}')", "generator": which,
            "source_checkpoint": source, "model": cfg.to_dict()["model"], "paddle": paddle.__version__,
            **({"classes": list(classes)} if m.num_classes else {})}
    atomic_write_text(os.path.join(out_dir, "export.json"), json.dumps(info, indent=1) + "\n")
    return prefix
