"""The training loop: it decides when to log, sample, evaluate and save; step.train_step does the
GAN step itself, and cli.py turns a command line into the (config, run folder, checkpoint) it runs.

One integer `step` (completed G updates) names every log row, sample grid and checkpoint. Paddle's
RNG is reseeded from (train.seed, step) before every step (seeds.step_seed), so the noise and dropout
masks of a step depend on nothing else: sampling or evaluating can never shift the training stream,
and a resumed run needs no saved RNG state to continue bit for bit.
"""
from __future__ import annotations

import contextlib
import math
import os
import time

import paddle

from . import layout, metrics, seeds
from .checkpoint import clean_temporary, read_state, rotate, save_checkpoint
from .config import Config, dump
from .data import BatchStream, build_dataset
from .distributed import SINGLE, World, agree, sync_batchnorm, wait_for_writer, wrap
from .errors import CheckpointError, TrainingError
from .fast import faster, use_onednn_convs
from .inference import generate
from .logger import RunLogger, say, status_line
from .models import CONVOLUTIONAL, build_models
from .plots import write_run_pictures
from .runlock import RunLock
from .signals import StopOnSignal
from .step import make_optimizers, make_precision, train_step
from .utils import atomic_write_text, make_grid


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

    def __init__(self, run_dir: str, cfg: Config, G, D, opt_G, opt_D, stream, precision, fixed_noise,
                 last: str | None):
        self.run_dir, self.cfg, self.models = run_dir, cfg, (G, D, opt_G, opt_D)
        self.stream, self.precision, self.fixed_noise = stream, precision, fixed_noise
        self.last = last
        self.saved_step = None

    def write(self, step: int, name: str | None = None, **extra) -> str:
        """Checkpoint `step` (or checkpoints/<name>/), refusing non-finite weights; returns its folder."""
        last = self.last or "none saved yet"
        if not _all_finite(*self.models[:2]):
            raise TrainingError(f"non-finite weights at step {step}; not saved (last good checkpoint: {last})")
        state = {"seed": self.cfg.train.seed, "data": self.stream.state(), "config": self.cfg.to_dict(),
                 "amp": self.precision.state_dict(), "rng": "paddle.seed(step_seed(seed, step)) before each step",
                 **extra}
        try:
            return save_checkpoint(layout.checkpoints_dir(self.run_dir), step, *self.models, self.fixed_noise,
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


def train(cfg: Config, run_dir: str, resume: dict | None = None, world: World = SINGLE) -> dict:
    """Train in run_dir until cfg.train.steps, from scratch or from `resume` (a loaded checkpoint,
    checkpoint.load_checkpoint), as process world.rank of world.size (distributed.py; only rank 0
    writes run_dir). Returns {'step', 'run_dir', 'checkpoint', 'stopped_by'} (a signal number or None).
    """
    t = cfg.train
    dataset = build_dataset(cfg.data, cfg.model)  # bad data fails before anything is written
    stream = BatchStream(dataset.images, t.batch_size, t.seed, **(resume["data"] if resume else {}),
                         rank=world.rank, world=world.size)
    extractor = (metrics.make_extractor(t.eval_extractor, cfg.data.name, cfg.model.channels,
                                        t.inception_weights or None)
                 if t.eval_every and world.writer else None)  # missing weights fail here, before any write
    onednn = (cfg.model.name in CONVOLUTIONAL  # an MLP GAN has nothing to build the operator for
              and use_onednn_convs(t.conv, quiet=not world.writer))  # onednn unbuildable: fails here
    if world.writer:
        os.makedirs(run_dir, exist_ok=True)

    lock = RunLock(run_dir, warn=say) if world.writer else contextlib.nullcontext()  # one writer per run folder
    # Adam names its moments (the .pdopt keys) from a process-wide counter: a fresh counter gives the
    # same names in every process, also in one that has trained before (a notebook, a test)
    with lock, paddle.utils.unique_name.guard():
        if world.writer:
            clean_temporary(run_dir)
        paddle.seed(t.seed)
        G, D = (sync_batchnorm(m, world) for m in build_models(cfg.model))
        opt_G, opt_D = make_optimizers(cfg, G, D)
        precision = make_precision(t.amp)
        if resume:
            G.set_state_dict(resume["G"])
            D.set_state_dict(resume["D"])
            opt_G.set_state_dict(resume["opt_G"])
            opt_D.set_state_dict(resume["opt_D"])
            precision.set_state_dict(resume.get("amp", {}))  # float16 loss scales continue where they were
            step, fixed_noise, resumed_from = resume["step"], resume["fixed_noise"], resume["path"]
            say(f"resumed from {resumed_from} at step {step}")
        else:
            step, resumed_from = 0, None
            fixed_noise = seeds.normal(t.seed, seeds.FIXED_NOISE, t.num_samples, cfg.model.z_dim)
        resume = None  # its tensors now live in the models and optimizers: no second copy for the whole run
        G, D = faster(G, D, t, onednn)
        G_train, D_train = wrap(G, world), wrap(D, world)  # DataParallel when world.size > 1
        ckpts = Checkpoints(run_dir, cfg, G, D, opt_G, opt_D, stream, precision, fixed_noise, last=resumed_from)
        ckpts.saved_step = step if resumed_from else None
        logger = None
        if world.writer:
            atomic_write_text(layout.config_path(run_dir), dump(cfg))
            logger = RunLogger(run_dir, step)
        best = Best(run_dir, t.eval_metric, extractor.name) if extractor else None
        interval = Interval()

        def log() -> None:  # one row: means over the steps since the last row
            row = {"step": step, **interval.take(stream.global_batch), "lr_G": float(opt_G.get_lr()),
                   "lr_D": float(opt_D.get_lr()), "epoch": stream.epoch}
            logger.scalars(row)
            say(status_line(step, t.steps, row, interval.eta(t.steps - step)))

        try:
            with StopOnSignal() as stop:
                agreed = None  # a parallel run stops on the signal all ranks agreed on after a step (distributed.agree)
                G.train()
                D.train()
                if step == 0 and resumed_from is None and world.writer:
                    logger.image(step, make_grid(generate(G, fixed_noise)))
                while step < t.steps and (agreed if world.parallel else stop.signum) is None:
                    t0 = time.perf_counter()
                    real = paddle.to_tensor(stream.next())
                    paddle.seed(seeds.step_seed(t.seed, step))
                    z = paddle.randn([stream.global_batch, cfg.model.z_dim])  # the step's noise, alike everywhere
                    if world.parallel:
                        z = z[world.rank * t.batch_size:(world.rank + 1) * t.batch_size]
                        paddle.seed(seeds.step_seed(t.seed, step, world.rank))
                    try:
                        out, agreed = agree(world, train_step(G_train, D_train, opt_G, opt_D, real, z, precision),
                                            stop.signum)
                    except (RuntimeError, OSError) as e:
                        if not world.parallel:
                            raise
                        raise TrainingError(f"step {step + 1}: a collective operation failed, so another process "
                                            f"of the run has stopped ({str(e).strip().splitlines()[-1][:200]}); "
                                            f"last complete checkpoint: {ckpts.last or 'none saved yet'}") from None
                    step += 1
                    if not all(math.isfinite(v) for v in out.values()):
                        bad = ", ".join(f"{k}={v}" for k, v in out.items() if not math.isfinite(v))
                        raise TrainingError(f"training diverged at step {step}: {bad}; last good checkpoint: "
                                            f"{ckpts.last or 'none saved yet'}")
                    interval.add(out, time.perf_counter() - t0)
                    if not world.writer:  # the other ranks only train; rank 0 logs, samples, evaluates and saves
                        continue
                    last = step == t.steps
                    if step % t.log_every == 0 or last:
                        log()
                    if (stream.epoch_done if t.sample_every == 0 else step % t.sample_every == 0) or last:
                        logger.image(step, make_grid(generate(G, fixed_noise)))
                    if t.eval_every and (step % t.eval_every == 0 or last):
                        scores = metrics.evaluate(G, cfg, num=t.eval_samples, seed=t.seed, extractor=extractor)
                        logger.scalars({"step": step, **scores})
                        better = best.improved(scores)
                        shown = ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if "_std_" not in k)
                        say(f"eval step {step} ({t.eval_samples} samples): {shown}{' | new best' if better else ''}")
                        if better:
                            ckpts.write(step, layout.BEST, eval={"metric": best.key, "value": best.value,
                                                                 "scores": scores})
                    if step % t.save_every == 0 or last:
                        ckpts.save(step, logger)
                # stopped by a signal between two saves, or nothing was left to train (train.steps reached)
                if world.writer:
                    if interval.steps:
                        log()
                    if ckpts.saved_step != step:
                        ckpts.save(step, logger)
                    write_run_pictures(run_dir, t.progress_gif)
                wait_for_writer(world)
                stopped_by = agreed if world.parallel else stop.signum
        except OSError as e:  # a log or sample write: disk full, quota, a folder removed under us
            raise TrainingError(f"writing the run folder at step {step} failed: {e}; last complete checkpoint: "
                                f"{ckpts.last or 'none saved yet'} (free space, then --resume)") from None
        finally:
            if logger:
                logger.close()
        if stopped_by is not None and world.writer:
            say(f"stopped at step {step}; checkpoint {ckpts.last}; continue with --resume")
    return {"step": step, "run_dir": run_dir, "checkpoint": ckpts.last, "stopped_by": stopped_by}
