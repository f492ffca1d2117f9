"""Which generator a run shows and scores: G itself, or with train.ema its exponential moving
average G_ema (ema.py), behind one interface, so that the loop never asks which it has.

    display = displayed_generator(cfg, G, labeling)
    display.generator()        # the generator of sample grids, evaluations and checkpoints/best/
    display.which          # "G" or "G_ema": what the logs and best/ say was scored
    display.update(G, step)    # after every G update
    display.state_dicts()  # what a checkpoint holds besides G, D and the optimizers
    display.restored(had_ema, step)   # after a resume (gan/state.py TrainingState.load_state_dict)
"""
from __future__ import annotations

from .. import ops, seeds
from .ema import EMA
from .models import build_generator

EMA_STATS = 1024  # noise vectors on which G_ema measures its BatchNorm statistics


class RawGenerator:
    which = "G"

    def __init__(self, G):
        self.G = G

    def generator(self):
        return self.G

    def update(self, G, step: int) -> None:
        pass

    def state_dicts(self) -> dict:
        return {}

    def restored(self, had_ema: bool, step: int) -> None:
        pass

    def use_onednn(self) -> None:
        pass


class AveragedGenerator(RawGenerator):
    which = "G_ema"

    def __init__(self, ema: EMA, G, note=None):
        self.ema, self.G, self.note = ema, G, note

    def generator(self):
        return self.ema.ready()  # with BatchNorm statistics of its own weights

    def update(self, G, step: int) -> None:
        self.ema.update(G, step)

    def state_dicts(self) -> dict:
        return {"G_ema": self.ema.G}

    def restored(self, had_ema: bool, step: int) -> None:
        """After a resume: G_ema as saved (with the statistics measured then), or, from a checkpoint
        without one (EMA switched on mid-run), started at the resumed G's weights."""
        if had_ema:
            self.ema.fresh = True
        else:
            if self.note:
                self.note(f"note: train.ema is on from step {step}: the average starts at G's weights there")
            self.ema.reset(self.G)

    def use_onednn(self) -> None:
        ops.use_onednn(self.ema.G)


def displayed_generator(cfg, G, labeling, note=None) -> RawGenerator:
    """G, or with train.ema the EMA generator, started at G's current weights (a resume restores it:
    restored())."""
    t, m = cfg.train, cfg.model
    if not t.ema:
        return RawGenerator(G)
    ema = EMA(build_generator(m), t.ema, seeds.normal(t.seed, seeds.EMA_STATS, EMA_STATS, m.z_dim),
              labeling.balanced(EMA_STATS))
    ema.reset(G)
    return AveragedGenerator(ema, G, note)
