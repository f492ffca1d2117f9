"""What the training loop keeps track of between steps: the means of the current log interval,
the run's checkpoints (and the last complete one, which every error names), and the best
evaluation so far."""
from __future__ import annotations

import paddle

from . import device, layout, metrics
from .checkpoint import save_checkpoint
from .history import rotate
from .state_file import read_state
from .config import Config
from .errors import CheckpointError, TrainingError
from .logger import RunLogger


class Interval:
    """Means of the step results since the last log row, and this session's pace for the ETA."""

    def __init__(self):
        self.sums, self.steps, self.seconds = {}, 0, 0.0
        self.session_steps, self.session_seconds = 0, 0.0

    def add(self, out: dict[str, float], seconds: float) -> None:
        for k, v in out.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps, self.seconds = self.steps + 1, self.seconds + seconds
        self.session_steps, self.session_seconds = self.session_steps + 1, self.session_seconds + seconds

    def take(self, images_per_step: int) -> dict[str, float]:
        """The interval's means (and img/s), starting a new interval."""
        row = {k: v / self.steps for k, v in self.sums.items()}
        row["img_per_s"] = self.steps * images_per_step / self.seconds
        self.sums, self.steps, self.seconds = {}, 0, 0.0
        return row

    def eta(self, steps_left: int) -> float:
        return steps_left * self.session_seconds / self.session_steps


def _all_finite(*models) -> bool:
    return all(bool(paddle.isfinite(p).all()) for m in models for p in m.state_dict().values()
               if p.dtype in (paddle.float32, paddle.float16, paddle.bfloat16, paddle.float64))


class Checkpoints:
    """Writes the run's checkpoints (what a resume restores: the models, their optimizers, the data
    position, the fixed noise, the loss scales) and remembers the last complete one, which every
    error message names."""

    def __init__(self, run_dir: str, cfg: Config, models: dict, stream, precision, fixed_noise,
                 last: str | None, prepare=None, **state):
        """models: {G, D, opt_G, opt_D[, G_ema]} (checkpoint.STATE_DICTS); prepare(): called before
        each write (the EMA generator measures its BatchNorm statistics); state: more state.json fields."""
        self.run_dir, self.cfg, self.models, self.prepare = run_dir, cfg, models, prepare
        self.stream, self.precision, self.fixed_noise = stream, precision, fixed_noise
        self.last, self.state = last, state
        self.saved_step = None

    def write(self, step: int, name: str | None = None, **extra) -> str:
        """Checkpoint `step` (or checkpoints/<name>/), refusing non-finite weights; returns its folder."""
        last = self.last or "none saved yet"
        if not _all_finite(self.models["G"], self.models["D"]):
            raise TrainingError(f"non-finite weights at step {step}; not saved (last good checkpoint: {last})")
        if self.prepare:
            self.prepare()
        state = {"seed": self.cfg.train.seed, "data": self.stream.state(), "config": self.cfg.to_dict(),
                 "amp": self.precision.state_dict(), "rng": "paddle.seed(step_seed(seed, step)) before each step",
                 "device": paddle.get_device(), "paddle_build": device.build(), **self.state, **extra}
        try:
            return save_checkpoint(layout.checkpoints_dir(self.run_dir), step, self.models, self.fixed_noise,
                                   state, name=name)
        except OSError as e:  # e.g. disk full: the half-written folder is gone, older checkpoints untouched
            raise TrainingError(f"saving the step-{step} checkpoint{f' ({name})' if name else ''} failed: {e}; "
                                f"last complete checkpoint: {last} (free space, then --resume)") from None

    def save(self, step: int, logger: RunLogger) -> None:
        """A numbered checkpoint; then the logs are made durable and old checkpoints rotated."""
        self.last, self.saved_step = self.write(step), step
        logger.flush()
        rotate(self.run_dir, self.cfg.train.keep_checkpoints, protect=self.last)


class Best:
    """Which evaluation is the best so far: by train.eval_metric of the run's extractor, carried over
    from checkpoints/best/ of an earlier start if that was chosen by the same score."""

    def __init__(self, run_dir: str, metric: str, extractor_name: str):
        self.key, self.lower = f"{metric}_{extractor_name}", metric in metrics.LOWER_IS_BETTER
        self.value = None
        try:
            info = read_state(layout.best_dir(run_dir), verify=False).get("eval", {})
            self.value = info.get("value") if info.get("metric") == self.key else None
        except CheckpointError:
            pass

    def improved(self, scores: dict[str, float]) -> bool:
        value = scores[self.key]
        if self.value is not None and (value >= self.value if self.lower else value <= self.value):
            return False
        self.value = value
        return True
