"""Every key a run can use, as typed dataclass fields with their defaults; the comment beside each
key is its documentation. The model section is the keys every model has (ModelConfig) and the keys of
the model chosen by model.name (ModelConfig.arch, one dataclass per model in models.py); in a file
and in -o overrides they are one flat section: model.g_channels, not model.arch.g_channels."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .models import MODELS, ModelKeys


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # mnist | fashion_mnist | image_folder | cifar10
    root: str = ""  # folder with the files; "" = default places (README "Data"); required for image_folder
    split: str = "train"  # train | test (IDX and CIFAR datasets)
    download: bool = True  # fetch missing IDX/CIFAR files when online (MD5-checked)
    limit: int = 0  # use only the first N images (0 = all)
    cache: bool = True  # image_folder: keep the decoded uint8 array in ~/.cache/paddle_gan for the next run
    max_pixels: int = 64_000_000  # image_folder: images with more pixels are skipped and counted (read from the header, before decoding)


@dataclass
class ModelConfig:
    name: str = "dcgan"  # which model (config/models.py; its networks: gan/models/<name>.py)
    z_dim: int = 100  # latent size; z ~ N(0, I)
    img_size: int = 32  # output height = width (what a model can build: its checks say)
    channels: int = 1  # 1 = grey, 3 = RGB
    init: str = "dcgan"  # dcgan: weights N(0, 0.02), BN weight N(1, 0.02), biases 0 | ortho: orthogonal weights, biases 0 | paddle: framework default
    spectral_norm: bool = False  # spectral normalisation of every weight layer of D (Miyato 2018)
    num_classes: int = 0  # class-conditional G and D (0 = unconditional); how G takes the label is the model's choice
    d_cond: str = "projection"  # how a conditional D uses the label: projection (Miyato & Koyama 2018) | acgan (a class head, Odena 2017)
    arch: ModelKeys = field(default_factory=MODELS["dcgan"])  # the keys of model.name (config/models.py), flat in files

    def to_dict(self) -> dict:
        """The flat section as files write it: the common keys, then the model's own."""
        common = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "arch"}
        return {**common, **dataclasses.asdict(self.arch)}


COMMON_MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "arch")


@dataclass
class OptimConfig:
    lr: float = 2e-4  # Adam learning rate (DCGAN paper)
    beta1: float = 0.5  # Adam beta1 (DCGAN paper; 0.9 makes GAN training oscillate)
    beta2: float = 0.999  # Adam beta2


@dataclass
class TrainConfig:
    steps: int = 10000  # total G updates; each step is one D update then one G update
    batch_size: int = 64  # images per D and per G update
    seed: int = 0  # same seed + same config -> identical weights on CPU
    log_every: int = 50  # steps between status lines, rows of the metrics log and VisualDL points
    sample_every: int = 500  # steps between fixed-noise sample grids; 0 = at the end of every data epoch (first and last step always get one)
    save_every: int = 1000  # steps between checkpoints (the last step is always saved)
    keep_checkpoints: int = 3  # newest checkpoints kept on disk (0 = keep all)
    num_samples: int = 64  # images in the fixed-noise sample grid
    eval_every: int = 0  # steps between evaluations (0 = off; the last step is evaluated too): metrics/* and checkpoints/best/
    eval_samples: int = 2000  # generated and real images per evaluation during training (tools/eval.py defaults to 10000)
    eval_metric: str = "fid"  # the score that picks checkpoints/best/: fid, kid (lower is better), is, precision, recall, density, coverage
    eval_extractor: str = "auto"  # features for the scores: lenet (MNIST-like), inception (RGB), auto = lenet where one is trained
    inception_weights: str = ""  # FID Inception weights (.pdparams, or pytorch-fid's .pth); "" = ~/.cache/paddle_gan/InceptionV3.pdparams, downloaded once
    progress_gif: bool = False  # at the end of a run, assemble samples/*.png into progress.gif
    amp: str = ""  # "" = float32 | float16 | bfloat16: mixed precision (autocast O1; float16 adds a GradScaler per optimizer). For GPUs: on CPU Paddle's autocast keeps float32, so nothing changes
    device: str = "auto"  # auto (GPU 0 when Paddle is a CUDA build and sees a GPU, else the CPU) | cpu | gpu | gpu:N
    conv: str = "auto"  # convolutions for CPU training: onednn (paddle_gan/ops, built on first use with g++; ~1.7x faster) | paddle (Paddle's own kernels, the reference) | auto = onednn where it builds, else paddle
    to_static: bool = False  # compile G and D with paddle.jit.to_static (same results; for GPUs: on CPU it measured about 2x slower than dygraph)
    loss: str = "nonsaturating"  # nonsaturating (DCGAN's BCE) | hinge (SNGAN) | wgan_gp (critic + gradient penalty) | lsgan (least squares); formulas in gan/losses.py
    gp_lambda: float = 10.0  # wgan_gp: weight of the gradient penalty on interpolates (Gulrajani 2017: 10)
    r1_gamma: float = 0.0  # R1 penalty gamma/2 |grad D(x)|^2 on real images, with any loss (0 = off; Mescheder 2018)
    r1_every: int = 1  # lazy R1 (StyleGAN2): the penalty on every k-th D update only, weighted by k (e.g. 16; 1 = every update)
    n_critic: int = 1  # D updates per G update, each on its own real batch (WGAN-GP: 5)
    class_weight_D: float = 1.0  # a classifying D (model.d_cond acgan): weight of D's class loss
    class_weight_G: float = 1.0  # a classifying D: weight of G's class loss (the reward for drawing the class asked for)
    class_fakes: bool = False  # a classifying D also learns the class asked for from G's images (Odena 2017: true); false: from real images only (measured: class accuracy 91.6 % against 65.8 %, README)
    diffaug: str = ""  # DiffAugment policy (Zhao 2020): comma-separated of color, translation, cutout, applied to every image D sees; "" = off
    ema: float = 0.0  # decay of an exponential moving average of G's weights (e.g. 0.999; 0 = off): samples, scores and best/ use it


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    opt_G: OptimConfig = field(default_factory=OptimConfig)
    opt_D: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict:
        return {f.name: (getattr(self, f.name).to_dict() if f.name == "model" else
                         dataclasses.asdict(getattr(self, f.name))) for f in dataclasses.fields(self)}
