"""movinet_tf: MoViNets for Keras 3 — streaming video recognition.

Public API::

    model = movinet_tf.build_model("a0", stream=True, num_classes=600)
    states = model.init_states([1, 1, 172, 172, 3])
    logits, states = model({**states, "image": frame})

The names below load on first use, so that ``import movinet_tf.cli`` or the
TFLite streaming path never pays for (or needs) TensorFlow.
"""
import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "MODEL_IDS": "movinet_tf.models",
    "build_model": "movinet_tf.models",
    "format_spec": "movinet_tf.models",
    "get_spec": "movinet_tf.models",
    "parse_spec": "movinet_tf.models",
    "count_flops": "movinet_tf.models.flops",
    "load_official_checkpoint": "movinet_tf.models.official_checkpoint",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'movinet_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
