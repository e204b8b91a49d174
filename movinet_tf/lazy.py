"""Package attributes that import their module on first use (PEP 562).

A package lists its public names and where they live; `attach` returns the
module-level ``__getattr__``, ``__dir__`` and ``__all__``. So ``import
movinet_tf.data`` or the TFLite streaming path never loads TensorFlow unless a
name that needs it is used.

    _PUBLIC = {"build_model": "movinet_tf.models",
               "read_video": ("movinet_tf.data.video_io", None),   # None: the same name
               "preprocess": ("movinet_tf.data.preprocess", "eval_frames")}
    __getattr__, __dir__, __all__ = lazy.attach(__name__, _PUBLIC)
"""
import importlib
import sys


def attach(package, public):
    """Lazy attributes for `package` (its ``__name__``) from `public` {name: module or (module, attr)}."""
    def __getattr__(name):
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = public[name]
        module, attribute = (where, None) if isinstance(where, str) else where
        value = getattr(importlib.import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)   # Later lookups skip this function.
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__, sorted(public)
