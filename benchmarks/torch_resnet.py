"""PyTorch's peer of SNGAN's ResNet G and D (paddle_gan/gan/models/resnet.py), for bench_train.py: the
reference blocks (nearest x2 upsampling then a 3x3 convolution; a 3x3 convolution then 2x2 average
pooling), which paddle_gan folds into stride-2 convolutions that compute the same function; the same
widths, BatchNorm in G, spectral norm on every weight layer of D (torch's spectral_norm), global sum
pooling. mirror(paddle_layer) builds it; copy_weights(paddle_layer, torch_module) gives it the Paddle
layer's weights (tests/test_fast_penalties.py checks the outputs agree)."""
import torch
import torch.nn.functional as F
from torch import nn


class UpBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in, eps=1e-5, momentum=0.1), nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        h = self.conv1(F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(self, z_dim, img_size, channels, c):
        super().__init__()
        self.c = c
        self.fc = nn.Linear(z_dim, 16 * c)
        self.blocks = nn.Sequential(*[UpBlock(c, c) for _ in range({32: 3, 64: 4}[img_size])])
        self.bn = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
        self.out = nn.Conv2d(c, channels, 3, 1, 1)

    def forward(self, z):
        h = self.blocks(self.fc(z).reshape(z.shape[0], self.c, 4, 4))
        return torch.tanh(self.out(F.relu(self.bn(h))))


class DownBlock(nn.Module):
    def __init__(self, c_in, c_out, down, first=False, sn=lambda m: m):
        super().__init__()
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, 1, 1)), sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.shortcut = sn(nn.Conv2d(c_in, c_out, 1)) if (down or c_in != c_out) else None
        self.down, self.first = down, first

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.shortcut is not None:
            s = self.shortcut(F.avg_pool2d(x, 2) if self.first else x)
            s = F.avg_pool2d(s, 2) if self.down and not self.first else s
        return h + s


class Discriminator(nn.Module):
    def __init__(self, img_size, channels, c, spectral=True):
        super().__init__()
        sn = nn.utils.spectral_norm if spectral else (lambda m: m)
        downs = {32: 1, 64: 2}[img_size]
        blocks = [DownBlock(channels, c, True, first=True, sn=sn)]
        blocks += [DownBlock(c, c, True, sn=sn) for _ in range(downs)]
        blocks += [DownBlock(c, c, False, sn=sn) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = sn(nn.Linear(c, 1))

    def forward(self, x):
        return self.linear(F.relu(self.blocks(x)).sum(dim=[2, 3]))


def mirror(layer):
    """The torch peer of a paddle_gan ResNetGenerator or ResNetDiscriminator (weights: copy_weights)."""
    from paddle_gan.gan.models import resnet

    if isinstance(layer, resnet.ResNetGenerator):
        return Generator(layer.fc.weight.shape[0], 4 * 2 ** len(layer.blocks), layer.out.weight.shape[0], layer.c)
    if isinstance(layer, resnet.ResNetDiscriminator):
        first = layer.blocks[0].conv1
        size = 8 * 2 ** sum(1 for b in layer.blocks if getattr(b.conv2, "up", None) is False)
        spectral = hasattr(first, "weight_orig")
        return Discriminator(size, first.weight.shape[1] if not spectral else first.weight_orig.shape[1],
                             layer.feature_dim, spectral=spectral)
    raise TypeError(f"no torch mirror for {type(layer).__name__}")


def copy_weights(paddle_layer, module) -> None:
    """Paddle's parameters and BatchNorm statistics into the mirror, by their order of creation (without
    spectral norm: its power-iteration vectors are each framework's own)."""
    params = [p.numpy() for p in paddle_layer.parameters()]
    with torch.no_grad():
        targets = [t for name, t in module.state_dict().items() if not name.endswith("num_batches_tracked")]
        for t, p in zip(targets, params):
            t.copy_(torch.from_numpy(p.T.copy() if p.ndim == 2 else p))
