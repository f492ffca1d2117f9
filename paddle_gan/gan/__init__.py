"""The GAN itself: the networks of each model (models/), the objective as a list of terms and the
losses behind them, the step, the precision policy, the EMA generator and which generator is shown,
the labels a run asks of G, and the kernels the models run on (train.conv, train.to_static)."""

# their config keys are declared on import, in this order; terms after objective: a network's terms are summed
# in registration order (adversarial, penalties, class losses, path length)
from . import ema, kernels, objective, precision, terms, path_length  # noqa: E402,F401
