"""paddle_gan: the classic GANs (MLP GAN, DCGAN) in PaddlePaddle dygraph, trained, resumed and logged."""
import warnings

from . import runtime

__version__ = "0.1.0"

runtime.configure_env()  # before Paddle loads: MKL reads its variables once

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="No ccache found")  # Paddle's import-time build hint
    try:
        import paddle  # noqa: F401
    except ImportError:
        raise ImportError(
            "paddle_gan needs PaddlePaddle: pip install -e '.[cpu]' (CPU), or for a GPU first paddlepaddle-gpu "
            "from Paddle's own package index (README 'GPU'), then pip install -e ."
        ) from None

runtime.configure_paddle()
# Paddle's C++ extension helper repeats its build hint whenever it is imported (the oneDNN operator's load)
warnings.filterwarnings("ignore", message="No ccache found")
# Paddle 3 notes on every first BatchNorm forward that it tracks running statistics: not news to us.
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
