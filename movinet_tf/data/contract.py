"""`InputContract`: what a model expects of its input frames, travelling with every export.

A MoViNet is trained on clips sampled at one frame rate, resized and cropped
one way. A consumer that feeds it another rate or another crop gets wrong
answers without an error, so the contract is written into every export and
read back by every consumer:

* the run's config: ``data.video_fps / data.temporal_stride`` frames per second,
  ``data.image_size`` and ``data.min_image_size`` (`InputContract.from_data_config`);
* the TFLite manifest: the top-level ``input_contract`` key
  (`InputContract.from_dict` / `to_dict`), with ``dtype`` and ``quantization``
  read from the converted model's image input tensor;
* the SavedModel: ``loaded.input_contract`` (the same JSON) and
  ``loaded.frame_rate`` (0.0 when unknown).

This module imports neither TensorFlow nor OpenCV.

Example:
    contract = InputContract.from_data_config(cfg.data)   # 12.5 fps, 56x56, short side 64
    manifest["input_contract"] = contract.to_dict()
    InputContract.from_dict(manifest["input_contract"]) == contract   # True
"""
import dataclasses
import json
import math

# The rates of the published Kinetics-600 checkpoints (MoViNet paper, table of
# A0-A5 inputs: frames x resolution at fps), for exports of official weights.
PUBLISHED_FRAME_RATES = {"a0": 5.0, "a1": 5.0, "a2": 5.0, "a3": 12.0, "a4": 8.0, "a5": 12.0}

_DTYPES = ("float32", "uint8", "int8")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"input contract: {name} is {value!r}; expected an integer >= 1.")
    return value


@dataclasses.dataclass(frozen=True)
class InputContract:
    """The preprocessing a model was trained with; every consumer reads its frames through it.

    Attributes:
        frame_rate: frames per second the model expects (``video_fps /
            temporal_stride`` of training), or None when unknown.
        image_size: (H, W) of the model input, the centre crop.
        min_image_size: the short side a frame is resized to before the crop.
        value_range: (low, high) of the float image the model was trained on.
        channels: channel order, ``"RGB"``.
        dtype: of the model's image input tensor: ``"float32"``, ``"uint8"`` or
            ``"int8"``.
        quantization: for an integer image input, ``(scale, zero_point)`` with
            ``real = scale * (q - zero_point)``; None for a float input.
    """
    frame_rate: float = None
    image_size: tuple = (172, 172)
    min_image_size: int = 172
    value_range: tuple = (0.0, 1.0)
    channels: str = "RGB"
    dtype: str = "float32"
    quantization: tuple = None

    def __post_init__(self):
        if self.frame_rate is not None:
            rate = self.frame_rate
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
                    math.isfinite(rate) and rate > 0):
                raise ValueError(f"input contract: frame_rate is {rate!r}; expected a number > 0 "
                                 "or None (unknown).")
            object.__setattr__(self, "frame_rate", float(rate))
        size = self.image_size
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise ValueError(f"input contract: image_size is {self.image_size!r}; expected [H, W].")
        size = tuple(_positive_int("image_size", int(s) if isinstance(s, float) and s.is_integer()
                                   else s) for s in size)
        object.__setattr__(self, "image_size", size)
        _positive_int("min_image_size", self.min_image_size)
        if self.min_image_size < min(size):
            raise ValueError(f"input contract: min_image_size ({self.min_image_size}) is smaller "
                             f"than the crop {size[0]}x{size[1]}.")
        low, high = (float(v) for v in self.value_range)
        if not low < high:
            raise ValueError(f"input contract: value_range is {self.value_range!r}; expected "
                             "[low, high] with low < high.")
        object.__setattr__(self, "value_range", (low, high))
        if self.channels != "RGB":
            raise ValueError(f"input contract: channels is {self.channels!r}; expected 'RGB'.")
        if self.dtype not in _DTYPES:
            raise ValueError(f"input contract: dtype is {self.dtype!r}; expected one of "
                             f"{list(_DTYPES)}.")
        if self.dtype == "float32":
            if self.quantization is not None:
                raise ValueError("input contract: a float32 image input has no quantization.")
        else:
            if self.quantization is None or len(self.quantization) != 2:
                raise ValueError(f"input contract: a {self.dtype} image input needs quantization "
                                 f"(scale, zero_point); got {self.quantization!r}.")
            scale, zero_point = self.quantization
            if not (math.isfinite(float(scale)) and float(scale) > 0):
                raise ValueError(f"input contract: quantization scale is {scale!r}; expected > 0.")
            object.__setattr__(self, "quantization", (float(scale), int(zero_point)))

    # -------------------------------------------------------------- builders

    @classmethod
    def from_data_config(cls, data_cfg, image_size=None):
        """The contract of a training run's ``data:`` section.

        Args:
            data_cfg: a `DataConfig`.
            image_size: an export at another side than training; the short side
                keeps the config's ratio ``min_image_size / image_size``.
        """
        size = int(image_size or data_cfg.image_size)
        min_size = int(round(size * data_cfg.min_image_size / data_cfg.image_size))
        return cls(frame_rate=data_cfg.video_fps / data_cfg.temporal_stride,
                   image_size=(size, size), min_image_size=max(min_size, size))

    @classmethod
    def from_dict(cls, entry):
        """The contract from a manifest's ``input_contract`` dict (or its JSON string)."""
        if isinstance(entry, (str, bytes)):
            entry = json.loads(entry)
        if not isinstance(entry, dict):
            raise ValueError(f"input_contract must be a JSON object; got {type(entry).__name__}.")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"input_contract has unknown key(s) {unknown}; expected "
                             f"{sorted(known)}.")
        values = dict(entry)
        quantization = values.get("quantization")
        if isinstance(quantization, dict):
            values["quantization"] = (quantization["scale"], quantization["zero_point"])
        for key in ("image_size", "value_range"):
            if key in values and isinstance(values[key], list):
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self):
        """The manifest form (the schema of the BRIEF: lists, and a dict for quantization)."""
        return {
            "frame_rate": self.frame_rate,
            "image_size": list(self.image_size),
            "min_image_size": self.min_image_size,
            "value_range": list(self.value_range),
            "channels": self.channels,
            "dtype": self.dtype,
            "quantization": (None if self.quantization is None else
                             {"scale": self.quantization[0], "zero_point": self.quantization[1]}),
        }

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_tensor(self, dtype, quantization=None):
        """The same contract for a converted model whose image input has `dtype`/`quantization`."""
        return dataclasses.replace(self, dtype=dtype,
                                   quantization=quantization if dtype != "float32" else None)

    def at_image_size(self, image_size):
        """The contract for the same model run at another crop side (int or (H, W)); the short
        side keeps its ratio to the crop."""
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if size == tuple(self.image_size):
            return self
        ratio = self.min_image_size / min(self.image_size)
        return dataclasses.replace(self, image_size=size,
                                   min_image_size=max(int(round(min(size) * ratio)), max(size)))

    def with_frame_rate(self, frame_rate):
        return dataclasses.replace(self, frame_rate=frame_rate)
