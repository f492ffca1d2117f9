"""Training: the pure GAN step, the loop that decides when to log, sample and save, and run setup
(run folder, resume, config checks) behind tools/train.py.

One integer `step` (completed G updates) names every log row, sample grid and checkpoint. Paddle's
RNG is reseeded from (train.seed, step) before every step, so the noise and dropout masks of a step
depend on nothing else: sampling or evaluating can never shift the training stream, and a resumed
run needs no saved RNG state to continue bit for bit.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import sys
import time

import numpy as np
import paddle
import paddle.nn.functional as F

from . import distributed, metrics, ops
from .checkpoint import (BEST, CheckpointError, checkpoint_config, clean_temporary, latest_checkpoint, list_checkpoints,
                         load_checkpoint, read_state, rotate, save_checkpoint)
from .config import Config, ConfigError, diff, dump, load_config, apply_overrides, validate
from .data import BatchStream, DataError, build_dataset
from .distributed import SINGLE, World, agree, sync_batchnorm, unwrap, wait_for_writer, wrap
from .logger import RunLogger, say, status_line
from .models import CONVOLUTIONAL, build_models
from .plots import write_run_pictures
from .runlock import RunLock, RunLockedError
from .utils import atomic_write_text, make_grid


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the step."""


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, paddle.full_like(logits, target))


@contextlib.contextmanager
def _frozen(model):
    """Parameters of `model` need no gradient inside the block. In the G step that skips the weight
    gradients of every D layer (about a sixth of a DCGAN step's arithmetic), which the next D step
    would clear unused anyway; G's gradients are computed exactly as before."""
    params = [p for p in model.parameters() if not p.stop_gradient]
    for p in params:
        p.stop_gradient = True
    try:
        yield
    finally:
        for p in params:
            p.stop_gradient = False


class Float32:
    """Plain float32 training: what train_step does when train.amp is off."""

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, loss, which: str) -> None:
        loss.backward()

    def step(self, opt, which: str) -> None:
        opt.step()

    def state_dict(self) -> dict:
        return {}

    def set_state_dict(self, state: dict) -> None:
        pass


class MixedPrecision(Float32):
    """train.amp: forward passes under paddle.amp.auto_cast (O1: matmuls and convolutions in `dtype`,
    numerically sensitive ops in float32); for float16 one GradScaler per optimizer, because G's and
    D's losses differ in scale. bfloat16 has float32's range and needs no scaling. Paddle turns both
    off on CPU (the run stays float32 there), so on CPU this is the same computation as Float32."""

    def __init__(self, dtype: str):
        self.dtype = dtype
        self.scalers = {k: paddle.amp.GradScaler(enable=dtype == "float16") for k in ("D", "G")}

    def autocast(self):
        return paddle.amp.auto_cast(enable=True, level="O1", dtype=self.dtype)

    def backward(self, loss, which: str) -> None:
        self.scalers[which].scale(loss).backward()

    def step(self, opt, which: str) -> None:  # skips the update if the scaled gradients overflowed
        self.scalers[which].step(opt)
        self.scalers[which].update()

    def state_dict(self) -> dict:  # JSON-ready (the loss scale and its counters), saved in state.json
        return {k: {n: (v.tolist() if hasattr(v, "tolist") else v) for n, v in s.state_dict().items()}
                for k, s in self.scalers.items()}

    def set_state_dict(self, state: dict) -> None:
        for k, s in self.scalers.items():
            if state.get(k):
                s.load_state_dict({n: (np.asarray(v, np.float32) if isinstance(v, list) else v)
                                   for n, v in state[k].items()})


FLOAT32 = Float32()


def make_precision(amp: str) -> Float32:
    return MixedPrecision(amp) if amp else FLOAT32


def train_step(G, D, opt_G, opt_D, real, z, precision: Float32 = FLOAT32) -> dict[str, float]:
    """One D update, then one G update. Returns plain floats."""
    # ---- D step: real -> 1, fake -> 0; the fake batch is detached so G gets no gradient here ----
    with precision.autocast():
        fake = G(z)
        logits_real = D(real)
        logits_fake = D(fake.detach())
        loss_D = _bce(logits_real, 1.0) + _bce(logits_fake, 0.0)
    opt_D.clear_grad()
    precision.backward(loss_D, "D")
    precision.step(opt_D, "D")
    # ---- G step: non-saturating loss (fake -> 1) through the just-updated D ----
    with _frozen(D):  # gradients flow through D to G, but D's own weight gradients are not computed
        with precision.autocast():
            loss_G = _bce(unwrap(D)(fake), 1.0)  # (no DataParallel sync for D: it has no gradients here)
        opt_G.clear_grad()
        precision.backward(loss_G, "G")
    precision.step(opt_G, "G")
    return {"loss_D": float(loss_D), "loss_G": float(loss_G),
            "D_real": float(F.sigmoid(logits_real).mean()), "D_fake": float(F.sigmoid(logits_fake).mean())}


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """Paddle's seed for a step; process `rank` of a data-parallel run reseeds with its own after the
    shared noise is drawn, so its dropout masks differ from the other processes'."""
    return (seed * 1_000_003 + step + rank * 0x9E3779B9) % (2 ** 32)


def fixed_noise_for(seed: int, n: int, z_dim: int) -> np.ndarray:
    return np.random.default_rng([seed, 1]).standard_normal((n, z_dim)).astype(np.float32)


def generate(G, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """G(z) in eval mode (BatchNorm running statistics) without touching training state."""
    was_training = G.training
    G.eval()
    try:
        with paddle.no_grad():
            out = [G(paddle.to_tensor(z[i:i + batch])).numpy() for i in range(0, len(z), batch)]
    finally:
        if was_training:
            G.train()
    return np.concatenate(out)


def make_optimizers(cfg: Config, G, D):
    opt_G = paddle.optimizer.Adam(learning_rate=cfg.opt_G.lr, beta1=cfg.opt_G.beta1, beta2=cfg.opt_G.beta2,
                                  parameters=G.parameters())
    opt_D = paddle.optimizer.Adam(learning_rate=cfg.opt_D.lr, beta1=cfg.opt_D.beta1, beta2=cfg.opt_D.beta2,
                                  parameters=D.parameters())
    return opt_G, opt_D


def _all_finite(*models) -> bool:
    return all(bool(paddle.isfinite(p).all()) for m in models for p in m.state_dict().values()
               if p.dtype in (paddle.float32, paddle.float16, paddle.bfloat16, paddle.float64))


class _StopOnSignal:
    """SIGINT/SIGTERM ask the loop to stop after the current step; a second SIGINT aborts at once."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is not None:  # e.g. paddle.distributed.launch sends SIGTERM up to three times
            return
        self.signum = signum
        say(f"\n{signal.Signals(signum).name}: finishing this step, then saving a checkpoint "
            f"(Ctrl-C again aborts without saving)")

    def __enter__(self):
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def __exit__(self, *exc):
        if self.signum is not None:  # the process is on its way out: a repeated signal (launchers repeat
            return                   # SIGTERM) must not reach Paddle's own handler, which aborts
        for s, h in self._previous.items():
            signal.signal(s, h)


def train(cfg: Config, run_dir: str, ckpt: str | None = None, world: World = SINGLE) -> dict:
    """Train (or continue from checkpoint folder `ckpt`) in run_dir until cfg.train.steps, as process
    world.rank of world.size (see distributed.py; only rank 0 writes run_dir).

    Returns {'step', 'run_dir', 'checkpoint', 'stopped_by'} (stopped_by: None or a signal number).
    """
    meta = read_state(ckpt) if ckpt else None  # hashes checked: a damaged checkpoint fails before the data is decoded
    dataset = build_dataset(cfg.data, cfg.model)  # bad data fails before anything is written
    stream = BatchStream(dataset.images, cfg.train.batch_size, cfg.train.seed, **(meta["data"] if meta else {}),
                         rank=world.rank, world=world.size)
    extractor = (metrics.make_extractor(cfg.train.eval_extractor, cfg.data.name, cfg.model.channels,
                                        cfg.train.inception_weights or None)
                 if cfg.train.eval_every and world.writer else None)  # missing weights fail here, before any write
    onednn = (cfg.model.name in CONVOLUTIONAL  # an MLP GAN has nothing to build the operator for
              and use_onednn_convs(cfg.train.conv, quiet=not world.writer))  # onednn unbuildable: fails here
    if not world.writer:
        return _train(cfg, run_dir, ckpt, meta, stream, extractor, world, onednn)
    os.makedirs(run_dir, exist_ok=True)
    with RunLock(run_dir, warn=say):  # one writer per run folder, from here to the end
        return _train(cfg, run_dir, ckpt, meta, stream, extractor, world, onednn)


def use_onednn_convs(choice: str, quiet: bool = False) -> bool:
    """train.conv -> whether to switch the models' convolutions to paddle_gan.ops (oneDNN)."""
    if choice == "paddle":
        return False
    try:
        ops.load(announce=None if quiet else say)
        return True
    except ops.OpsError as e:
        if choice == "onednn":
            raise ConfigError(f"train.conv: onednn is not available here: {e} (train.conv=paddle uses Paddle's own)")
        if not quiet:
            say(f"note: Paddle's own convolutions (train.conv=auto; the faster oneDNN ones are unavailable: {e})")
        return False


def faster(G, D, t, onednn: bool):
    """train.conv (oneDNN convolutions, when `onednn`) and train.to_static applied to G and D in
    place; parameters, state-dict keys and optimizer state stay as they are."""
    for model in (G, D) if onednn else ():
        ops.use_onednn(model)
    if t.to_static:
        G, D = paddle.jit.to_static(G, full_graph=True), paddle.jit.to_static(D, full_graph=True)
    return G, D


def _previous_best(ckpt_root: str, key: str) -> float | None:
    """The score of checkpoints/best/ if it was chosen by the same score (metric and extractor)."""
    try:
        info = read_state(os.path.join(ckpt_root, BEST), verify=False).get("eval", {})
    except CheckpointError:
        return None
    return info.get("value") if info.get("metric") == key else None


def _train(cfg: Config, run_dir: str, ckpt: str | None, meta: dict | None, stream: BatchStream, extractor,
           world: World, onednn: bool) -> dict:
    t = cfg.train
    if world.writer:
        clean_temporary(run_dir)
    state = load_checkpoint(ckpt, meta) if ckpt else None

    paddle.seed(t.seed)
    G, D = (sync_batchnorm(m, world) for m in build_models(cfg.model))
    opt_G, opt_D = make_optimizers(cfg, G, D)
    if state:
        G.set_state_dict(state["G"])
        D.set_state_dict(state["D"])
        opt_G.set_state_dict(state["opt_G"])
        opt_D.set_state_dict(state["opt_D"])
        step, fixed_noise = state["step"], state["fixed_noise"]
        say(f"resumed from {ckpt} at step {step}")
    else:
        step, fixed_noise = 0, fixed_noise_for(t.seed, t.num_samples, cfg.model.z_dim)
    del state  # its tensors now live in the models and optimizers; no second copy for the whole run
    precision = make_precision(t.amp)
    precision.set_state_dict((meta or {}).get("amp", {}))  # float16 loss scales continue where they were
    G, D = faster(G, D, t, onednn)
    G_train, D_train = wrap(G, world), wrap(D, world)  # DataParallel when world.size > 1: same weights everywhere
    if world.writer:
        atomic_write_text(os.path.join(run_dir, "config.yaml"), dump(cfg))
    logger = RunLogger(run_dir, step) if world.writer else None
    ckpt_root = os.path.join(run_dir, "checkpoints")
    last_ckpt = ckpt
    saved_step = step if ckpt else None
    best_key = f"{t.eval_metric}_{extractor.name}" if extractor else None
    best_value = _previous_best(ckpt_root, best_key) if extractor else None

    def write_checkpoint(name: str | None = None, **extra) -> str:
        if not _all_finite(G, D):
            raise TrainingError(f"non-finite weights at step {step}; not saved (last good checkpoint: "
                                f"{last_ckpt or 'none saved yet'})")
        trainer_state = {"seed": t.seed, "data": stream.state(), "config": cfg.to_dict(), "amp": precision.state_dict(),
                         "rng": "paddle.seed(step_seed(seed, step)) before each step", **extra}
        try:
            return save_checkpoint(ckpt_root, step, G, D, opt_G, opt_D, fixed_noise, trainer_state, name=name)
        except OSError as e:  # e.g. disk full: the half-written folder is gone, older checkpoints untouched
            raise TrainingError(f"saving the step-{step} checkpoint{f' ({name})' if name else ''} failed: {e}; "
                                f"last complete checkpoint: {last_ckpt or 'none saved yet'} "
                                f"(free space, then --resume)") from None

    def save() -> None:
        nonlocal last_ckpt, saved_step
        last_ckpt = write_checkpoint()
        saved_step = step
        logger.flush()
        rotate(run_dir, t.keep_checkpoints, protect=last_ckpt)

    def evaluate() -> None:
        nonlocal best_value
        scores = metrics.evaluate(G, cfg, num=t.eval_samples, seed=t.seed, extractor=extractor)
        logger.scalars({"step": step, **scores})
        value = scores[best_key]
        better = best_value is None or (value < best_value if t.eval_metric in metrics.LOWER_IS_BETTER
                                        else value > best_value)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if "_std_" not in k)
        say(f"eval step {step} ({t.eval_samples} samples): {shown}{' | new best' if better else ''}")
        if better:
            write_checkpoint(BEST, eval={"metric": best_key, "value": value, "scores": scores})
            best_value = value

    def sample() -> None:
        logger.image(step, make_grid(generate(G, fixed_noise)))

    sums, n, interval_time, session_time, session_steps = {}, 0, 0.0, 0.0, 0

    def log() -> None:  # one row: means over the steps since the last row
        nonlocal sums, n, interval_time
        row = {"step": step, **{k: v / n for k, v in sums.items()}, "img_per_s": n * stream.global_batch / interval_time,
               "lr_G": float(opt_G.get_lr()), "lr_D": float(opt_D.get_lr()), "epoch": stream.epoch}
        logger.scalars(row)
        say(status_line(step, t.steps, row, (t.steps - step) * session_time / session_steps))
        sums, n, interval_time = {}, 0, 0.0

    def step_once() -> dict[str, float]:
        real = paddle.to_tensor(stream.next())
        paddle.seed(step_seed(t.seed, step))
        z = paddle.randn([stream.global_batch, cfg.model.z_dim])  # the whole step's noise, drawn alike everywhere
        if world.parallel:
            z = z[world.rank * t.batch_size:(world.rank + 1) * t.batch_size]
            paddle.seed(step_seed(t.seed, step, world.rank))
        return train_step(G_train, D_train, opt_G, opt_D, real, z, precision)

    G.train()
    D.train()
    try:
        with _StopOnSignal() as stop:
            agreed = None  # a parallel run stops on the signal all ranks agreed on after a step (distributed.agree)

            def stopping() -> int | None:
                return agreed if world.parallel else stop.signum

            if step == 0 and ckpt is None and world.writer:
                sample()
            while step < t.steps and stopping() is None:
                t0 = time.perf_counter()
                try:
                    out, agreed = agree(world, step_once(), stop.signum)
                except (RuntimeError, OSError) as e:
                    if not world.parallel:
                        raise
                    raise TrainingError(f"step {step + 1}: a collective operation failed, so another process of "
                                        f"the run has stopped ({str(e).strip().splitlines()[-1][:200]}); "
                                        f"last complete checkpoint: {last_ckpt or 'none saved yet'}") from None
                step += 1
                dt = time.perf_counter() - t0
                if not all(math.isfinite(v) for v in out.values()):
                    bad = ", ".join(f"{k}={v}" for k, v in out.items() if not math.isfinite(v))
                    raise TrainingError(f"training diverged at step {step}: {bad}; last good checkpoint: "
                                        f"{last_ckpt or 'none saved yet'}")
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v
                n, interval_time = n + 1, interval_time + dt
                session_time, session_steps = session_time + dt, session_steps + 1
                if not world.writer:  # the other ranks only train; rank 0 logs, samples, evaluates and saves
                    continue
                if step % t.log_every == 0 or step == t.steps:
                    log()
                if (stream.epoch_done if t.sample_every == 0 else step % t.sample_every == 0) or step == t.steps:
                    sample()
                if t.eval_every and (step % t.eval_every == 0 or step == t.steps):
                    evaluate()
                if step % t.save_every == 0 or step == t.steps:
                    save()
            # stopped by a signal between two saves, or nothing was left to train (train.steps reached)
            if world.writer:
                if n:
                    log()
                if saved_step != step:
                    save()
                write_run_pictures(run_dir, t.progress_gif)
            wait_for_writer(world)
            stopped_by = stopping()
        if stopped_by is not None and world.writer:
            say(f"stopped at step {step}; checkpoint {last_ckpt}; continue with --resume")
        return {"step": step, "run_dir": run_dir, "checkpoint": last_ckpt, "stopped_by": stopped_by}
    except OSError as e:  # a log or sample write: disk full, quota, a folder removed under us
        raise TrainingError(f"writing the run folder at step {step} failed: {e}; last complete checkpoint: "
                            f"{last_ckpt or 'none saved yet'} (free space, then --resume)") from None
    finally:
        if logger:
            logger.close()


def resolve(config_path: str | None, overrides: list[str], output: str | None, resume: str | None,
            probe_lock: bool = True):
    """(cfg, run_dir, checkpoint or None) for a CLI call; raises ConfigError/CheckpointError.
    probe_lock: fail now if another trainer holds the run folder (off for the ranks that do not write)."""
    ckpt = None
    if resume not in (None, "latest"):
        if not os.path.isdir(resume):
            raise CheckpointError(f"--resume {resume}: no such checkpoint folder")
        if os.path.isdir(os.path.join(resume, "checkpoints")):  # a run folder: its newest checkpoint
            output = output or resume
            resume = "latest"
        else:
            ckpt = resume
            parent = os.path.dirname(os.path.abspath(resume))
            if output is None and os.path.basename(parent) != "checkpoints":
                raise ConfigError(f"--resume {resume}: not inside <run>/checkpoints/; give --output for the run folder")
            output = output or os.path.dirname(parent)
    if output is None:
        if config_path is None:
            raise ConfigError("give a config (-c FILE) or a run folder (--output DIR)")
        output = os.path.join("work", os.path.splitext(os.path.basename(config_path))[0])
    if probe_lock and os.path.isdir(output):  # fail early and clearly if another process trains there
        RunLock(output).acquire().release()
    if resume == "latest":
        ckpt = latest_checkpoint(output, log=lambda m: say(f"warning: {m}"))
        if ckpt is None and list_checkpoints(output):
            raise CheckpointError(f"--resume: no valid checkpoint in {os.path.join(output, 'checkpoints')}")
        if ckpt is None:  # killed before its first save, or never started: nothing to lose, start from step 0
            say(f"--resume: no checkpoint in {output} yet; starting from step 0")

    if ckpt is None:
        if config_path is None:
            raise ConfigError("a new run needs a config file (-c FILE)")
        cfg = load_config(config_path, overrides)
        existing = list_checkpoints(output)
        if existing:
            raise ConfigError(f"{output} already holds checkpoints (newest: step {existing[-1][0]}); "
                              f"continue it with --resume, or start a new run with --output DIR")
        return cfg, output, None

    saved = checkpoint_config(read_state(ckpt, verify=False))  # train() verifies the files when it loads them
    if config_path is not None:
        cfg = load_config(config_path, overrides)
    else:
        cfg = apply_overrides(copy.deepcopy(saved), overrides)
        validate(cfg)
    identity, other = diff(saved, cfg)
    if identity:
        raise ConfigError(f"cannot resume {ckpt} with a different model or dataset: {'; '.join(identity)}")
    if other:
        say(f"resume with changed settings: {'; '.join(other)}")
    return cfg, output, ckpt


def run(config: str | None = None, overrides: list[str] = (), output: str | None = None,
        resume: str | None = None) -> int:
    """CLI body of tools/train.py: returns the process exit code (0 done, 2 bad input,
    1 training error, 130/143 stopped by SIGINT/SIGTERM after saving)."""
    try:
        world = distributed.init()
        cfg, run_dir, ckpt = resolve(config, list(overrides), output, resume, probe_lock=world.writer)
        if world.writer:
            say(f"run folder: {run_dir}" + (f" ({world.size} processes x train.batch_size={cfg.train.batch_size})"
                                            if world.parallel else ""))
        result = train(cfg, run_dir, ckpt, world)
    except (ConfigError, DataError, CheckpointError, RunLockedError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    except (TrainingError, OSError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C mid-step
        print("error: interrupted; nothing saved since the last checkpoint", file=sys.stderr, flush=True)
        return 130
    if result["stopped_by"] is not None:
        return 128 + result["stopped_by"]
    if world.writer:
        say(f"done: step {result['step']}, checkpoint {result['checkpoint']}")
    return 0
