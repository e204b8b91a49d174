"""movinet_tf: MoViNets for Keras 3 — streaming video recognition.

Public API::

    model = movinet_tf.build_model("a0", stream=True, num_classes=600)
    states = model.init_states([1, 1, 172, 172, 3])
    logits, states = model({**states, "image": frame})

The names below load on first use, so that ``import movinet_tf.cli`` or the
TFLite streaming path never pays for (or needs) TensorFlow.
"""
from movinet_tf import lazy

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
__getattr__, __dir__, __all__ = lazy.attach(__name__, _PUBLIC)
