"""Packaging for movinet_tf.

TensorFlow comes as ``tensorflow-cpu`` by default (the small wheel, enough for
training on CPU, export and the tests). Set ``MOVINET_TF_GPU=1`` before
``pip install`` to depend on the CUDA build (``tensorflow[and-cuda]``) instead.
"""
import os

from setuptools import find_packages, setup

_TF_VERSION = "~=2.21.0"
if os.environ.get("MOVINET_TF_GPU", "0") == "1":
    _TENSORFLOW = "tensorflow[and-cuda]" + _TF_VERSION
else:
    _TENSORFLOW = "tensorflow-cpu" + _TF_VERSION

setup(
    name="movinet_tf",
    version="0.1.0",
    description="MoViNets for Keras 3: streaming video recognition, TFLite export, training.",
    packages=find_packages(include=["movinet_tf", "movinet_tf.*"]),
    # movinet_tf/configs is a link to the top-level configs/, so that bare config names
    # (--config a0_stream) resolve in a regular (non-editable) install too.
    package_data={"movinet_tf": ["configs/*.yaml", "configs/search/*.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        _TENSORFLOW,
        "tensorflow-datasets>=4.9",
        "absl-py>=2.0",
        "numpy>=1.26",
        "opencv-python-headless>=4.8",
        "pyyaml>=6.0",
        "ai-edge-litert>=2.3.0",
        "matplotlib>=3.7",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "psutil>=5.9"],
        # The official implementation, used only by the parity tests and the
        # benchmarks. tf-models-official itself pins an older TensorFlow, so it
        # is installed with --no-deps by `make install-reference`; these are the
        # packages its movinet modules import.
        "reference": [
            "tf-keras~=2.21.0",
            "gin-config",
            "scipy",
            "pycocotools",
            "pillow",
            "psutil",
        ],
    },
    entry_points={
        "console_scripts": [
            "movinet-train=movinet_tf.train:run",
            "movinet-stream=movinet_tf.stream:run",
        ],
    },
)
