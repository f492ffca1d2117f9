"""Which generator a run shows and scores: G itself, or with train.ema its exponential moving
average G_ema (ema.py), behind one interface, so that the loop never asks which it has.

    gens = shown_generator(cfg, G, plan, resume)
    gens.shown()        # the generator of sample grids, evaluations and checkpoints/best/
    gens.which          # "G" or "G_ema": what the logs and best/ say was scored
    gens.update(G, step)    # after every G update
    gens.state_dicts()  # what a checkpoint holds besides G, D and the optimizers
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

    def shown(self):
        return self.G

    def update(self, G, step: int) -> None:
        pass

    def state_dicts(self) -> dict:
        return {}

    def use_onednn(self) -> None:
        pass


class AveragedGenerator(RawGenerator):
    which = "G_ema"

    def __init__(self, ema: EMA):
        self.ema = ema

    def shown(self):
        return self.ema.ready()  # with BatchNorm statistics of its own weights

    def update(self, G, step: int) -> None:
        self.ema.update(G, step)

    def state_dicts(self) -> dict:
        return {"G_ema": self.ema.G}

    def use_onednn(self) -> None:
        ops.use_onednn(self.ema.G)


def shown_generator(cfg, G, plan, resume: dict | None = None, note=None) -> RawGenerator:
    """G, or with train.ema the EMA generator: restored from a resumed checkpoint that has one, else
    started at G's current weights (note() says so when EMA is switched on mid-run)."""
    t, m = cfg.train, cfg.model
    if not t.ema:
        return RawGenerator(G)
    ema = EMA(build_generator(m), t.ema, seeds.normal(t.seed, seeds.EMA_STATS, EMA_STATS, m.z_dim),
              plan.balanced(EMA_STATS))
    if resume and "G_ema" in resume:
        ema.G.set_state_dict(resume["G_ema"])  # with the statistics measured when it was saved
    else:
        if resume and note:
            note(f"note: train.ema is on from step {resume['step']}: the average starts at G's weights there")
        ema.reset(G)
    return AveragedGenerator(ema)
