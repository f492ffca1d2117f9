"""paddle_gan: the classic GANs (MLP GAN, DCGAN) in PaddlePaddle dygraph.

Paddle itself comes from an extra so that GPU users are not forced onto the CPU wheel:
    pip install -e ".[cpu]"    # paddlepaddle (CPU)
    pip install -e ".[gpu]"    # paddlepaddle-gpu (pick the CUDA build Paddle's docs name for your driver)
"""
from setuptools import find_packages, setup

setup(
    name="paddle_gan",
    version="0.1.0",
    description="Classic GANs (MLP GAN, DCGAN) in PaddlePaddle: train, resume exactly, watch in VisualDL",
    packages=find_packages(include=["paddle_gan", "paddle_gan.*"]),
    # ops/: the oneDNN convolution operator's source and the oneDNN headers it is compiled against
    package_data={"paddle_gan": ["_data/fashion_mnist/*", "metrics/weights/*", "ops/*.cc", "ops/third_party/onednn/*",
                                 "ops/third_party/onednn/include/oneapi/dnnl/*"]},
    python_requires=">=3.9",
    install_requires=[
        "numpy",
        "opencv-python-headless",  # image decoding and resizing (headless: no GUI libraries needed)
        "matplotlib",
        "visualdl",
        "PyYAML",
    ],
    extras_require={
        "cpu": ["paddlepaddle>=3.0"],
        "gpu": ["paddlepaddle-gpu>=3.0"],
        "test": ["pytest"],
    },
)
