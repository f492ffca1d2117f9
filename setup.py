"""paddle_gan: the classic GANs (MLP GAN, DCGAN) in PaddlePaddle dygraph.

Paddle itself is not a plain requirement, so that installing paddle_gan never pulls the CPU wheel
over a CUDA one:
    pip install -e ".[cpu]"    # CPU: paddlepaddle from the default package index
    GPU: first paddlepaddle-gpu 3.x from Paddle's own package index for your CUDA version (Paddle's
    install guide gives the command; the default index has only paddlepaddle-gpu <= 2.6), then
    pip install -e .
"""
from setuptools import find_packages, setup

setup(
    name="paddle_gan",
    version="0.1.0",
    description="Classic GANs (MLP GAN, DCGAN) in PaddlePaddle: train, resume exactly, watch in VisualDL",
    packages=find_packages(include=["paddle_gan", "paddle_gan.*"]) + ["paddle_gan.configs"],
    # configs/ of the repository, installed inside the package: the installed commands find the quickstart
    package_dir={"paddle_gan.configs": "configs"},
    # ops/: the oneDNN convolution operator's source and the oneDNN headers it is compiled against
    package_data={"paddle_gan": ["_data/fashion_mnist/*", "metrics/weights/*", "zoo/*/*", "ops/*.cc", "ops/third_party/onednn/*",
                                 "ops/third_party/onednn/include/oneapi/dnnl/*"], "paddle_gan.configs": ["*.yaml"]},
    entry_points={"console_scripts": [f"paddle-gan-{name.replace('_', '-')}=paddle_gan.commands.{name}:main"
                                      for name in ("train", "eval", "generate", "export", "train_evaluator")]},
    python_requires=">=3.9",
    install_requires=[
        "numpy",
        "opencv-python-headless",  # image decoding and resizing (headless: no GUI libraries needed)
        "matplotlib",
        "visualdl",
        "PyYAML",
        "tqdm",  # live progress bars on a terminal (a well-kept library instead of a hand-made bar)
        "safetensors",  # generator-only checkpoints and the zoo without pickles: a format with no code path at all
    ],
    extras_require={
        "cpu": ["paddlepaddle>=3.0"],  # no "gpu" extra: paddlepaddle-gpu 3.x is not on the default index (README "GPU")
        "onnx": ["paddle2onnx", "onnxruntime"],  # tools/export.py --format onnx: the Paddle ecosystem's ONNX path
        # the ONNX export is tested too; pytest-xdist runs the suite in 2 processes (pytest.ini), ~1.6x faster on 2 cores
        "test": ["pytest", "pytest-xdist", "paddle2onnx", "onnxruntime"],
    },
)
