"""Export of a generator for inference: paddle.jit.save (Paddle Inference, paddle.jit.load) and,
through paddle2onnx, ONNX (onnxruntime and every runtime that reads ONNX). Each export folder also
holds export.json, which says what goes in and comes out."""
from __future__ import annotations

import json
import os

import paddle
import paddle.nn.functional as F

from .errors import ConfigError
from .files import atomic_write_text

FORMATS = ("paddle", "onnx")  # tools/export.py --format
ONNX_OPSET = 13  # every onnxruntime of the last years runs it


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


MANIFEST = "export.json"
WRITTEN_BY = "paddle_gan export"
# every file an export folder can hold: an existing folder with anything else is not an earlier export
EXPORT_FILES = (MANIFEST, "generator.json", "generator.pdmodel", "generator.pdiparams", "generator.pdiparams.info",
                "generator.onnx")


def previous_export(path: str) -> str | None:
    """None if `path` is an earlier export of this tool (its export.json, and only files an export
    writes), else why not: tools/export.py replaces the one and refuses the other."""
    from .files import only_entries

    manifest = os.path.join(path, MANIFEST)
    try:
        if not os.path.isfile(manifest) or os.path.getsize(manifest) > 1 << 20:
            raise ValueError
        with open(manifest, encoding="utf-8") as f:
            info = json.load(f)
        if not (isinstance(info, dict) and "model" in info and "source_checkpoint" in info):
            raise ValueError
    except (OSError, ValueError, RecursionError):
        return f"no {MANIFEST} of an export"
    return only_entries(path, lambda name: name in EXPORT_FILES)


def export_generator(G, cfg, out_dir: str, uint8: bool = False, source: str = "", classes=(),
                     which: str = "G", onnx: bool = False, final_dir: str | None = None) -> str:
    """paddle.jit.save the generator (eval mode) to out_dir/generator.*; describe it in export.json
    (with the paths of final_dir, the folder out_dir becomes: tools/export.py writes a temporary
    folder and renames it). Returns the path prefix to give paddle.jit.load or paddle.inference."""
    from paddle.static import InputSpec

    m = cfg.model
    os.makedirs(out_dir, exist_ok=True)
    G.eval()
    prefix = os.path.join(out_dir, "generator")
    shown = os.path.join(final_dir or out_dir, "generator")
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
    info = {"written_by": WRITTEN_BY, "input": inputs, "output": output, "load": f"paddle.jit.load('{shown}')",
            "generator": which, **({"onnx": f"onnxruntime.InferenceSession('{shown}.onnx')"} if onnx else {}),
            **({"truncation": G.truncation_psi} if hasattr(G, "truncation_psi") else {}),
            "source_checkpoint": source, "model": cfg.to_dict()["model"], "paddle": paddle.__version__,
            **({"classes": list(classes)} if m.num_classes else {})}
    atomic_write_text(os.path.join(out_dir, MANIFEST), json.dumps(info, indent=1) + "\n")
    return prefix


def to_onnx(prefix: str) -> str:
    """prefix.onnx from the paddle.jit.save'd prefix.json + prefix.pdiparams (paddle2onnx, the Paddle
    ecosystem's converter: pip install -e '.[onnx]'); its inputs keep their names (z, label)."""
    try:
        import paddle2onnx
    except ImportError:
        raise ConfigError("--format onnx needs paddle2onnx and onnxruntime: pip install -e '.[onnx]'") from None
    from .ops import quiet_fds  # paddle2onnx and its optimiser print pages of progress

    out = prefix + ".onnx"
    with quiet_fds() as printed:
        try:
            paddle2onnx.export(prefix + ".json", prefix + ".pdiparams", out, opset_version=ONNX_OPSET,
                               enable_onnx_checker=True)
        except Exception as e:
            lines = [ln for ln in printed().splitlines() if "error" in ln.lower()] or [str(e)]
            raise ConfigError(f"paddle2onnx could not convert {prefix}: {lines[-1].strip()[:300]}") from None
    return out
