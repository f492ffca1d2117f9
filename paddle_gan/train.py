"""The training loop: it decides when to log, sample, evaluate and save; step.train_step does the
GAN step itself, and cli.py turns a command line into the (config, run folder, checkpoint) it runs.

One integer `step` (completed G updates) names every log row, sample grid and checkpoint. Paddle's
RNG is reseeded from (train.seed, step) before every step (seeds.step_seed), so the noise, the labels
asked of G and the dropout masks of a step depend on nothing else: sampling or evaluating can never
shift the training stream, and a resumed run needs no saved RNG state to continue bit for bit.
"""
from __future__ import annotations

import contextlib
import math
import os
import time

import paddle

from . import bounds, metrics, progress, seeds
from .config import Config, dump
from .data import BatchStream, build_dataset
from .distributed import SINGLE, TIME_UP, World, agree, on_gpu, sync_batchnorm, wait_for_writer, wrap
from .errors import ConfigError, DataError, TrainingError
from .files import atomic_write_text
from .gan.ema import statistics_layers
from .gan.generators import displayed_generator
from .gan.kernels import apply_speed_switches, channels_last_wanted, use_onednn_convs
from .gan.labels import labeling_for
from .gan.models import MODELS, build_models, lazy_networks
from .gan.objective import Objective, panels, tags
from .gan.precision import make_precision
from .gan.sample import sample_grid
from .gan.state import TrainingState, make_optimizers
from .gan.step import step_inputs, train_step
from .images import display_scale
from .ops import has_eligible
from .progress import say
from .run import layout
from .run.best import Best
from .run.checkpoint import Checkpoints
from .run.checkpoint_history import abandon_later, clean_temporary
from .run.lock import RunLock
from .run.plots import write_run_pictures
from .run.run_log import Interval, RunLogger, status_line
from .run.state_json import STATE_DICTS
from .signals import StopOnSignal


def _onednn(cfg, world, G=None, D=None) -> bool:
    """Whether the run's convolutions go to the oneDNN operator: an MLP GAN has none to build it for;
    train.conv=onednn where it cannot be built fails here (a ConfigError)."""
    G, D = (G, D) if G is not None else lazy_networks(cfg.model)
    return has_eligible(G, D) and use_onednn_convs(cfg.train.conv, quiet=not world.writer)


def choose_precision(cfg, world: World = SINGLE, note=None):
    """train.amp's policy for this machine and model; note(text) says what runs in which precision
    (the first line of a run shows it)."""
    if not cfg.train.amp:  # (no need to build the operator for a question float32 does not ask)
        return make_precision("")
    return make_precision(cfg.train.amp, on_gpu=on_gpu(), onednn=_onednn(cfg, world), note=note)


def prepare(cfg: Config, resume: dict | None, world: World, labeling, stream, objective,
            precision=None) -> TrainingState:
    """The training state of a run: G, D, their optimizers, the displayed generator (G or the EMA
    one), the precision policy (chosen here unless given), built and, for a resume, restored
    (TrainingState.load_state_dict: every tensor checked against these networks first); then the
    speed switches applied."""
    t = cfg.train
    note = say if world.writer else None
    paddle.seed(t.seed)
    G, D = (sync_batchnorm(m, world) for m in build_models(cfg.model))
    MODELS[cfg.model.name].prepare_training(G, D, cfg)
    opt_G, opt_D = make_optimizers(cfg, G, D)
    display = displayed_generator(cfg, G, labeling, note=note)
    onednn = _onednn(cfg, world, G, D)
    precision = precision or make_precision(t.amp, on_gpu=on_gpu(), onednn=onednn, note=note)
    state = TrainingState(G, D, opt_G, opt_D, display, precision, objective, stream)
    if resume:
        state.load_state_dict(resume, where={k: os.path.join(resume["path"], STATE_DICTS[k])
                                             for k in state.tensors()})
    # (the operator has the second derivative a gradient penalty needs)
    penalised = objective.second_derivatives
    state.G, state.D = apply_speed_switches(G, D, t, onednn, penalised, channels_last_wanted(
        t, onednn, precision.cpu_bfloat16, note, penalised))
    if onednn:
        display.use_onednn()
    return state


def train(cfg: Config, run_dir: str, resume: dict | None = None, world: World = SINGLE, precision=None) -> dict:
    """Train in run_dir until cfg.train.steps, from scratch or from `resume` (a loaded checkpoint,
    checkpoint.load_checkpoint), as process world.rank of world.size (distributed.py; only rank 0
    writes run_dir); precision: train.amp's policy if already chosen (choose_precision). Returns
    {'step', 'run_dir', 'checkpoint', 'stopped_by'} (a signal number, distributed.TIME_UP when
    train.minutes ran out, or None).
    """
    t, m = cfg.train, cfg.model
    bounds.check_config(cfg)  # the products of the keys (grid, batches, evaluation), before anything is made
    bounds.check_model(m, copies_of_G=2 if t.ema else 1)  # from the parameters' shapes, before a weight is made
    try:
        dataset = build_dataset(cfg.data, m)  # bad data fails before anything is written
    except MemoryError:
        raise DataError(f"{cfg.data.name}: the images do not fit in memory at model.img_size={m.img_size} "
                        f"(data.limit takes fewer)") from None
    labeling = labeling_for(m)  # which labels the run asks of G (none, or classes)
    stream = BatchStream(dataset.images, t.batch_size, t.seed, rank=world.rank, world=world.size,
                         labels=labeling.stream_labels(dataset))
    extractor = (metrics.make_extractor(t.eval_extractor, cfg.data.name, m.channels, t.inception_weights or None,
                                        conv=t.conv)
                 if t.eval_every and world.writer else None)  # missing weights fail here, before any write
    objective = Objective.of(cfg)
    with contextlib.ExitStack() as held:
        # Adam names its moments (the .pdopt keys) from a process-wide counter: a fresh counter gives
        # the same names in every process, also in one that has trained before (a notebook, a test)
        held.enter_context(paddle.utils.unique_name.guard())
        try:  # built before the run folder exists: a model too big for memory leaves nothing behind
            state = prepare(cfg, resume, world, labeling, stream, objective, precision)
        except MemoryError:
            raise ConfigError(f"model: G and D do not fit in memory ({m.name}, img_size={m.img_size})") from None
        if world.writer and objective.second_derivatives and statistics_layers(state.D):
            say("note: D has BatchNorm, which mixes the images of a batch, while a gradient penalty is taken per "
                "image (the WGAN-GP paper's critic has none); model.d_norm=none leaves it out")
        abandoned = None
        if world.writer:
            os.makedirs(run_dir, exist_ok=True)
            held.enter_context(RunLock(run_dir, warn=say))  # one writer per run folder, from here to the end
            clean_temporary(run_dir)
            if resume:  # resuming from an older checkpoint: move the later history aside (checkpoint_history.py)
                abandoned = abandon_later(run_dir, resume["step"], log=say)
        if resume:
            step, fixed_noise, resumed_from = resume["step"], resume["fixed_noise"], resume["path"]
            say(f"resumed from {resumed_from} at step {step}")
        else:  # (conditional: one row per class, the same z down each column)
            step, resumed_from = 0, None
            fixed_noise = labeling.grid_noise(seeds.normal(t.seed, seeds.FIXED_NOISE, t.num_samples, m.z_dim))
        resume = None  # its tensors now live in the models and optimizers: no second copy for the whole run
        G_train, D_train = wrap(state.G, world), wrap(state.D, world)  # DataParallel when world.size > 1
        display = state.display  # the generator of sample grids, scores and best/
        ckpts = Checkpoints(run_dir, cfg, state, fixed_noise, last=resumed_from, prepare=display.generator,
                            **labeling.state(dataset))
        ckpts.saved_step = step if resumed_from else None
        logger = None
        if world.writer:
            atomic_write_text(layout.config_path(run_dir), dump(cfg))
            logger = RunLogger(run_dir, step, tags(), abandoned=abandoned)
        chosen = metrics.chosen(t.eval_metrics, also=t.eval_metric)
        best = Best(run_dir, t.eval_metric, extractor.name, metrics.lower_is_better(t.eval_metric)) if extractor else None
        evaluator = metrics.Evaluator(cfg, t.eval_samples, t.seed, extractor, metrics=chosen) if extractor else None
        interval = Interval()

        def sample() -> None:  # shown enlarged: a cell is >= 64 px on screen
            logger.image(step, sample_grid(display.generator(), fixed_noise, labeling, scale=display_scale(m.img_size)))

        def log() -> None:  # one row: means over the steps since the last row
            row = {"step": step, **interval.take(stream.global_batch), "lr_G": float(state.opt_G.get_lr()),
                   "lr_D": float(state.opt_D.get_lr()), "epoch": stream.epoch}
            logger.scalars(row)
            say(status_line(step, t.steps, row, interval.eta(t.steps - step)))

        try:
            with StopOnSignal() as stop:
                # a run stops on the signal (or the time budget, TIME_UP) all ranks agreed on after a step
                agreed, deadline = None, time.monotonic() + 60 * t.minutes if t.minutes else None
                state.G.train()
                state.D.train()
                if step == 0 and resumed_from is None and world.writer:
                    sample()
                bar = held.enter_context(progress.bar(t.steps, "train", "step", initial=step, lines=None)
                                         if world.writer else progress.bar(0, ""))  # a live bar on a terminal
                # with several ranks only the agreed stop ends the loop: a signal that lands on one rank after
                # this step's agreement is carried into the next step's, so no rank leaves a collective early
                while step < t.steps and agreed is None and (world.parallel or stop.signum is None):
                    t0 = time.perf_counter()
                    inputs = step_inputs(stream, cfg, labeling, step, world)
                    try:
                        over = deadline is not None and time.monotonic() >= deadline  # (train.minutes)
                        out, agreed = agree(world, train_step(G_train, D_train, state.opt_G, state.opt_D, **inputs,
                                                              precision=state.precision, objective=objective),
                                            stop.signum if stop.signum is not None else TIME_UP if over else None)
                    except (RuntimeError, OSError) as e:
                        if not world.parallel:
                            raise
                        raise TrainingError(f"step {step + 1}: a collective operation failed, so another process "
                                            f"of the run has stopped ({str(e).strip().splitlines()[-1][:200]}); "
                                            f"last complete checkpoint: {ckpts.last or 'none saved yet'}") from None
                    if agreed not in (None, TIME_UP):  # the launcher SIGTERMs the ranks running once one has exited
                        stop.adopt(agreed)
                    step = state.step = step + 1
                    display.update(state.G, step)
                    if not all(math.isfinite(v) for v in out.values()):
                        bad = ", ".join(f"{k}={v}" for k, v in out.items() if not math.isfinite(v))
                        raise TrainingError(f"training diverged at step {step}: {bad}; last good checkpoint: "
                                            f"{ckpts.last or 'none saved yet'}")
                    dt = time.perf_counter() - t0
                    interval.add(out, dt)
                    bar.update(1)
                    bar.set_postfix_str(f"loss_D {out['loss_D']:.3f} loss_G {out['loss_G']:.3f} "
                                        f"{stream.global_batch / dt:.0f} img/s")
                    if not world.writer:  # the other ranks only train; rank 0 logs, samples, evaluates and saves
                        continue
                    last = step == t.steps
                    if step % t.log_every == 0 or last:
                        log()
                    if (stream.epoch_done if t.sample_every == 0 else step % t.sample_every == 0) or last:
                        sample()
                    if t.eval_every and (step % t.eval_every == 0 or last):
                        scores = evaluator(display.generator())  # noise and reference features are kept
                        which = display.which
                        logger.scalars({"step": step, "generator": which, **scores})
                        better = best.improved(scores)
                        summary = ", ".join(f"{k} {v:.4g}" for k, v in scores.items()
                                            if "_std_" not in k and isinstance(v, float))
                        say(f"eval step {step} ({which}, {t.eval_samples} samples): {summary}"
                            f"{' | new best' if better else ''}")
                        if better:
                            ckpts.write(step, layout.BEST, eval={"metric": best.key, "value": best.value,
                                                                 "generator": which, "scores": scores})
                    if step % t.save_every == 0 or last:
                        ckpts.save(step, logger)
                # stopped by a signal between two saves, or nothing was left to train (train.steps reached)
                if world.writer:
                    if interval.steps:
                        log()
                    if ckpts.saved_step != step:
                        ckpts.save(step, logger)
                    write_run_pictures(run_dir, t.progress_gif, panels(),
                                       [p for name in metrics.METRICS for p in metrics.METRICS[name].panels])
                wait_for_writer(world)
                stopped_by = stop.signum if stop.signum is not None else agreed
        except OSError as e:  # a log or sample write: disk full, quota, a folder removed under us
            raise TrainingError(f"writing the run folder at step {step} failed: {e}; last complete checkpoint: "
                                f"{ckpts.last or 'none saved yet'} (free space, then --resume)") from None
        finally:
            if logger:
                logger.close()
    return {"step": step, "run_dir": run_dir, "checkpoint": ckpts.last, "stopped_by": stopped_by}
