"""What a command line or a config may ask for, in one place: bounds on counts (images to generate,
strips, GIF frames) and on their products (a sample grid, an evaluation, a batch, a dataset held in
memory, a model), estimated before anything is allocated. A refusal is one ConfigError line naming
the keys or options and the estimate, so a typo or a hostile file costs a second, not a swap storm
or a C++ abort. Per-key bounds (each number on its own) live beside the keys (config/checks.py)."""
from __future__ import annotations

import math
import os

from .errors import ConfigError

MAX_GRID_PIXELS = 1 << 27  # a sample grid or an interpolation strip (and a GIF frame read back): 134 M pixels
MAX_GENERATED = 1_000_000  # images one command generates or scores (tools/generate.py --num, tools/eval.py --num)
MAX_STRIPS = 1000  # tools/generate.py --interpolate
MAX_STRIP_STEPS = 1000  # tools/generate.py --steps
MAX_GIF_FRAMES = 500  # frames of progress.gif: more sample grids are thinned out evenly


def physical_memory() -> int:
    """Bytes of memory this machine has (16 GB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def budget() -> int:
    """What one run may plan to hold: the machine's memory less a fifth for the system and the rest
    of the process (Paddle itself, the data, the activations no estimate here counts)."""
    return physical_memory() * 4 // 5


def gb(n: int) -> str:
    return f"{n / 1e9:,.0f} GB" if n >= 1e11 else f"{n / 1e9:.3g} GB"


def need_memory(estimate: int, keys: str, what: str) -> None:
    """ConfigError unless `estimate` bytes for `what` fit the budget; `keys` names what to change."""
    if estimate > budget():
        raise ConfigError(f"{keys}: {what} would need about {gb(estimate)}, more than this machine can hold "
                          f"({gb(physical_memory())} in all)")


def grid_shape(n: int, img_size: int, nrow: int | None = None, pad: int = 2, scale: int = 1) -> tuple[int, int]:
    """(height, width) in pixels of images.make_grid's grid of n images (the same arithmetic)."""
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    return (pad + ncol * (img_size + pad)) * scale, (pad + nrow * (img_size + pad)) * scale


def check_grid(n: int, img_size: int, channels: int, keys: str, nrow: int | None = None, scale: int = 1,
               what: str = "a sample grid") -> None:
    """A grid of n images: its pixels within MAX_GRID_PIXELS, the images behind it within memory."""
    h, w = grid_shape(n, img_size, nrow, scale=scale)
    if h * w > MAX_GRID_PIXELS:
        raise ConfigError(f"{keys}: {what} of {n} images at {img_size} px would be {w} x {h} pixels, more than "
                          f"the {MAX_GRID_PIXELS} a picture here may have")
    need_memory(n * channels * img_size ** 2 * 4 + h * w * channels, keys, what)


def check_count(value: int, limit: int, option: str, low: int = 1) -> None:
    if not low <= value <= limit:
        raise ConfigError(f"{option} must be in {low}..{limit}, got {value}")


def check_config(cfg) -> None:
    """The products of a config's keys: the sample grid, the batches of one step, an evaluation."""
    from .images import display_scale

    m, t = cfg.model, cfg.train
    image = m.channels * m.img_size ** 2 * 4  # bytes of one float32 image
    check_grid(t.num_samples, m.img_size, m.channels, "train.num_samples, model.img_size",
               scale=display_scale(m.img_size))
    # real and fake batches of every D update of a step, and the gradients of the fakes
    need_memory(3 * t.n_critic * t.batch_size * image, "train.batch_size, train.n_critic, model.img_size",
                "the images of one step")
    if t.eval_every:
        features = 2048  # the most any extractor gives (Inception's pool features)
        need_memory(t.eval_samples * (2 * features * 4 + image), "train.eval_samples, model.img_size",
                    "an evaluation")


def check_dataset(n: int, channels: int, img_size: int, what: str) -> None:
    """A dataset of n images decoded to uint8 at img_size, before it is decoded."""
    need_memory(n * channels * img_size ** 2, "data.limit, model.img_size",
                f"{what}: {n} images at {img_size} px held in memory")


def check_model(m, copies_of_G: int = 1, training: bool = True) -> None:
    """G and D of model section m, counted from their parameters' shapes before a weight is made
    (paddle.LazyGuard): weights, gradients and Adam's two moments for training; the EMA generator."""
    from .gan.models import parameter_count

    g, d = parameter_count(m)
    per = 4 * (4 if training else 1)
    widths = [f"model.{f}" for f in vars(m.arch) if f.endswith(("channels", "hidden"))]
    need_memory(per * (g + d) + 4 * g * (copies_of_G - 1), ", ".join(widths + ["model.img_size"]),
                f"{m.name} with {g + d:,} parameters")
