"""The GAN step: train.n_critic D updates, then one G update (train_step), for any objective
(objective.py: a list of terms), and the inputs of a step (step_inputs). train_step updates G, D and
their optimizers in place and draws from Paddle's global RNG (interpolates, augmentations, dropout),
which step_inputs has seeded for the step: the same inputs and step give the same update. The
training loop (train.py) only decides when to call it; benchmarks/bench_train.py times exactly this.
"""
from __future__ import annotations

import contextlib

import paddle

from .. import seeds
from ..distributed import SINGLE, unwrap
from .models import call
from .objective import NONSATURATING, Judged, Objective
from .precision import FLOAT32, Precision


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


def _leaf(x):
    """x as a new leaf whose input gradient can be taken (for R1, before D sees it)."""
    x = x.detach()
    x.stop_gradient = False
    return x


def _each(x, n: int) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x] * n if x is None else [x]


def _total(terms, b: Judged, update: int, scalars: list):
    """The sum of the terms that apply at this update of their network, in list order (each term with
    `every` = k applies on every k-th update, weighted by k); the named ones are noted in scalars."""
    total = None
    for term in terms:
        if update % term.every:
            continue
        value = term(b)
        if term.name:
            scalars.append((term.name, value))
        value = value * term.every if term.every > 1 else value
        total = value if total is None else total + value
    return total


def _read(scalars: list) -> tuple[dict, dict]:
    """(sums, counts) per name of a step's scalar tensors, read from the device in one go (a host read
    per term and update would stall a GPU's queue every time), summed in float64 in their order."""
    values = paddle.stack([t.detach().astype("float32").reshape([]) for _, t in scalars]).numpy()
    sums, counts = {}, {}
    for (name, _), v in zip(scalars, values):
        sums[name] = sums.get(name, 0.0) + float(v)
        counts[name] = counts.get(name, 0) + 1
    return sums, counts


def train_step(G, D, opt_G, opt_D, real, z, precision: Precision = FLOAT32, objective: Objective = NONSATURATING,
               y=None, y_fake=None, step: int = 0) -> dict[str, float]:
    """D updates, then one G update, in place (models, optimizers, the precision's loss scales, the
    state of terms that keep one), drawing from Paddle's RNG. `real`, `z` (and for a conditional
    model the labels `y` of the real images and `y_fake` asked of G) are one batch each, or lists of
    train.n_critic batches: one D update per batch, each on its own real images and noise. The G
    update is taken on the fake batch of the last D update, through the D that update produced; terms
    on G's side also get G and that z. `step`: completed G updates before this one (D update number
    step * n_critic + k decides which lazy terms apply). Returns plain floats: loss_D, D_real, D_fake
    as means over the D updates, loss_G, and each named term (its mean over the updates it applied to).
    """
    reals, zs = _each(real, 1), _each(z, 1)
    ys, ys_fake = _each(y, len(reals)), _each(y_fake, len(reals))
    d_terms, g_terms = objective.of_network("D"), objective.of_network("G")
    aug = objective.augment

    def judge(net):  # D's output for images, each augmented first (train.diffaug)
        return (lambda x, y: call(net, x, y)) if aug is None else (lambda x, y: call(net, aug(x), y))

    scalars = []  # (name, a scalar tensor) of the whole step, read once at its end
    for k, (real, z, y, y_fake) in enumerate(zip(reals, zs, ys, ys_fake)):
        # ---- D step: real images against fake ones; the fake batch is detached, so G gets no gradient ----
        with precision.autocast():
            fake = call(G, z, y_fake)
            update = step * len(reals) + k  # D update number: which lazy terms apply
            if any(t.real_input_gradient and update % t.every == 0 for t in d_terms):
                real = _leaf(real)
            see = judge(D)
            b = Judged(see, real, fake.detach(), y, y_fake, see(real, y), see(fake.detach(), y_fake))
            loss_D = _total(d_terms, b, update, scalars)
        opt_D.clear_grad()
        precision.backward(loss_D, "D")
        precision.step(opt_D, "D")
        objective.observe(b)
        scalars += [("loss_D", loss_D), ("D_real", objective.loss.logged(b.logit_real)),
                    ("D_fake", objective.loss.logged(b.logit_fake))]
    # ---- G step: its fake batch judged by the just-updated D ----
    with _frozen(D):  # gradients flow through D to G, but D's own weight gradients are not computed
        with precision.autocast():
            plain_D = unwrap(D)  # (no DataParallel sync for D: no gradients here)
            b = Judged(judge(plain_D), None, fake, None, y_fake, None, judge(plain_D)(fake, y_fake), G=G, z=z, step=step)
            loss_G = _total(g_terms, b, step, scalars)
        opt_G.clear_grad()
        precision.backward(loss_G, "G")
    precision.step(opt_G, "G")
    sums, counts = _read(scalars + [("loss_G", loss_G)])
    out = {key: sums[key] / len(reals) for key in ("loss_D", "D_real", "D_fake")}
    out.update({name: sums[name] / counts[name] for name in sums if name in (t.name for t in d_terms)})
    out["loss_G"] = sums["loss_G"]
    out.update(objective.values())
    out.update({name: sums[name] / counts[name] for name in sums if name in (t.name for t in g_terms)})
    return out


def step_inputs(stream, cfg, labeling, step: int, world=SINGLE) -> dict:
    """train_step's inputs for `step`: train.n_critic real batches, their noise and (conditional) the
    labels asked of G (labeling: gan/labels.py). The noise and labels of the whole step are drawn from the
    step's seed, alike on every rank of a data-parallel run, and each rank takes its slice."""
    t, m = cfg.train, cfg.model
    batches = [labeling.real_batch(stream) for _ in range(t.n_critic)]
    paddle.seed(seeds.step_seed(t.seed, step))
    z = paddle.randn([t.n_critic * stream.global_batch, m.z_dim])
    y_fake = labeling.fake_labels(t.n_critic * stream.global_batch)
    mine = [slice(k * stream.global_batch + world.rank * t.batch_size,
                  k * stream.global_batch + (world.rank + 1) * t.batch_size) for k in range(t.n_critic)]
    if world.parallel:
        paddle.seed(seeds.step_seed(t.seed, step, world.rank))
    return {"real": [paddle.to_tensor(x) for x, _ in batches], "z": [z[s] for s in mine],
            "y": None if y_fake is None else [paddle.to_tensor(y) for _, y in batches],
            "y_fake": None if y_fake is None else [y_fake[s] for s in mine], "step": step}
