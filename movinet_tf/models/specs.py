"""The MoViNet architectures as data.

A model is a few lines of text, one per stage::

    stem 8
    block 8: e24_k155_s2
    block 32: e80_k333_s2 e80_k333 e80_k333
    ...
    head 480
    classifier 2048

``block OUT: ...`` lists the layers of a block whose output width is OUT. A
layer token ``e{expand}_k{kt}{kh}{kw}[_s2]`` gives the expansion width, the
depthwise kernel (t, h, w) and an optional spatial stride of 2. The stem is a
(1, 3, 3) conv with stride (1, 2, 2). `parse_spec` is strict and `format_spec`
is its exact inverse, so specs written by the architecture search, stored in
configs or in `.keras` files describe themselves.
"""
import dataclasses
import re

_LAYER_RE = re.compile(r"^e(\d+)_k(\d)(\d)(\d)(_s2)?$")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One inverted-bottleneck layer."""
    expand_filters: int
    kernel_size: tuple  # (kt, kh, kw)
    spatial_stride: int = 1

    @property
    def strides(self):
        return (1, self.spatial_stride, self.spatial_stride)

    def token(self):
        kt, kh, kw = self.kernel_size
        stride = "_s2" if self.spatial_stride == 2 else ""
        return f"e{self.expand_filters}_k{kt}{kh}{kw}{stride}"


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """A block: layers that share one output width."""
    out_filters: int
    layers: tuple


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A whole backbone plus the classifier's hidden width."""
    stem_filters: int
    blocks: tuple
    head_filters: int
    classifier_filters: int

    @property
    def num_layers(self):
        return sum(len(block.layers) for block in self.blocks)


def _parse_layer(token, where):
    match = _LAYER_RE.match(token)
    if not match:
        raise ValueError(
            f"{where}: bad layer token {token!r}; expected e<expand>_k<t><h><w>[_s2], "
            "e.g. 'e80_k333_s2'.")
    expand, kt, kh, kw, stride = match.groups()
    kernel = (int(kt), int(kh), int(kw))
    if 0 in kernel:
        raise ValueError(f"{where}: kernel sizes must be >= 1 in {token!r}.")
    if int(expand) < 1:
        raise ValueError(f"{where}: expansion width must be >= 1 in {token!r}.")
    return LayerSpec(int(expand), kernel, 2 if stride else 1)


def _parse_int(text, where):
    if not re.fullmatch(r"\d+", text.strip()):
        raise ValueError(f"{where}: expected a positive integer, got {text.strip()!r}.")
    value = int(text)
    if value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value}.")
    return value


def parse_spec(text):
    """Parses a spec string into a `ModelSpec`.

    Raises:
        ValueError: naming the line and token that is wrong.
    """
    stem = head = classifier = None
    blocks = []
    for number, raw in enumerate(text.strip().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"spec line {number} ({line!r})"
        keyword, _, rest = line.partition(" ")
        if keyword == "stem":
            stem = _parse_int(rest, where)
        elif keyword == "head":
            head = _parse_int(rest, where)
        elif keyword == "classifier":
            classifier = _parse_int(rest, where)
        elif keyword == "block":
            width, colon, layers = rest.partition(":")
            if not colon or not layers.split():
                raise ValueError(f"{where}: expected 'block <out>: <layer> <layer> ...'.")
            layer_specs = tuple(_parse_layer(tok, where) for tok in layers.split())
            blocks.append(BlockSpec(_parse_int(width, where), layer_specs))
        else:
            raise ValueError(
                f"{where}: unknown keyword {keyword!r}; expected stem, block, head or classifier.")
    for name, value in (("stem", stem), ("head", head), ("classifier", classifier)):
        if value is None:
            raise ValueError(f"Spec has no '{name}' line.")
    if not blocks:
        raise ValueError("Spec has no 'block' line.")
    return ModelSpec(stem, tuple(blocks), head, classifier)


def format_spec(spec):
    """The canonical text of a `ModelSpec`; ``parse_spec(format_spec(s)) == s``."""
    lines = [f"stem {spec.stem_filters}"]
    for block in spec.blocks:
        lines.append(f"block {block.out_filters}: " + " ".join(l.token() for l in block.layers))
    lines.append(f"head {spec.head_filters}")
    lines.append(f"classifier {spec.classifier_filters}")
    return "\n".join(lines)


# The searched architectures of the paper, as released in the TF Model Garden.
MODEL_SPECS = {
    "a0": """
stem 8
block 8: e24_k155_s2
block 32: e80_k333_s2 e80_k333 e80_k333
block 56: e184_k533_s2 e112_k333 e184_k333
block 56: e184_k533 e184_k333 e184_k333 e184_k333
block 104: e384_k533_s2 e280_k155 e280_k155 e344_k155
head 480
classifier 2048
""",
    "a1": """
stem 16
block 16: e40_k155_s2 e40_k333
block 40: e96_k333_s2 e120_k333 e96_k333 e96_k333
block 64: e216_k533_s2 e128_k333 e216_k333 e168_k333 e216_k333
block 64: e216_k533 e216_k333 e216_k333 e128_k333 e128_k155 e216_k333
block 136: e456_k533_s2 e360_k155 e360_k155 e360_k155 e456_k155 e456_k333 e544_k133
head 600
classifier 2048
""",
    "a2": """
stem 16
block 16: e40_k155_s2 e40_k333 e64_k333
block 40: e96_k333_s2 e120_k333 e96_k333 e96_k333 e120_k333
block 72: e240_k533_s2 e160_k333 e240_k333 e192_k333 e240_k333
block 72: e240_k533 e240_k333 e240_k333 e240_k333 e144_k155 e240_k333
block 144: e480_k533_s2 e384_k155 e384_k155 e480_k155 e480_k155 e480_k333 e576_k133
head 640
classifier 2048
""",
    "a3": """
stem 16
block 16: e40_k155_s2 e40_k333 e64_k333 e40_k333
block 48: e112_k333_s2 e144_k333 e112_k333 e112_k155 e144_k333 e144_k333
block 80: e240_k533_s2 e152_k333 e240_k333 e192_k333 e240_k333
block 88: e264_k533 e264_k333 e264_k333 e264_k333 e160_k155 e264_k333 e264_k333 e264_k333
block 168: e560_k533_s2 e448_k155 e448_k155 e560_k155 e560_k155 e560_k333 e448_k155 e448_k155 e560_k333 e672_k133
head 744
classifier 2048
""",
    "a4": """
stem 24
block 24: e64_k155_s2 e64_k333 e96_k333 e64_k333 e96_k333 e64_k333
block 56: e168_k333_s2 e168_k333 e136_k333 e136_k333 e168_k333 e168_k333 e168_k333 e136_k155 e136_k333
block 96: e320_k533_s2 e160_k333 e320_k333 e192_k333 e320_k333 e160_k333 e320_k333 e256_k333 e320_k333
block 96: e320_k533 e320_k333 e320_k333 e320_k333 e192_k155 e320_k333 e320_k333 e192_k333 e320_k333 e320_k333
block 192: e640_k533_s2 e512_k155 e512_k155 e640_k155 e640_k155 e640_k333 e512_k155 e512_k155 e640_k155 e768_k155 e640_k155 e640_k333 e768_k333
head 856
classifier 2048
""",
    "a5": """
stem 24
block 24: e64_k155_s2 e64_k155 e96_k333 e64_k333 e96_k333 e64_k333
block 64: e192_k533_s2 e152_k333 e152_k333 e152_k333 e192_k333 e192_k333 e192_k333 e152_k333 e152_k333 e192_k333 e192_k333
block 112: e376_k533_s2 e224_k333 e376_k333 e376_k333 e296_k333 e376_k333 e224_k333 e376_k333 e376_k333 e296_k333 e376_k333 e376_k333 e376_k333
block 120: e376_k533 e376_k333 e376_k333 e376_k333 e224_k155 e376_k333 e376_k333 e224_k333 e376_k333 e376_k333 e376_k333
block 224: e744_k533_s2 e744_k333 e600_k155 e600_k155 e744_k155 e744_k155 e744_k333 e896_k155 e600_k155 e600_k155 e896_k155 e744_k155 e744_k333 e896_k155 e600_k155 e600_k155 e744_k155 e744_k333
head 992
classifier 2048
""",
    "t0": """
stem 8
block 8: e16_k155_s2
block 32: e72_k333_s2 e72_k155
block 56: e112_k533_s2 e112_k155 e112_k333
block 56: e184_k533 e184_k155 e184_k333 e184_k333
block 104: e344_k533_s2 e344_k155 e344_k155 e344_k333
head 240
classifier 1024
""",
}

MODEL_IDS = tuple(MODEL_SPECS)


def get_spec(model_id):
    """The `ModelSpec` of a published model id.

    Raises:
        ValueError: for an unknown id, listing the valid ones.
    """
    if model_id not in MODEL_SPECS:
        raise ValueError(f"Unknown model id {model_id!r}; expected one of {', '.join(MODEL_IDS)}.")
    return parse_spec(MODEL_SPECS[model_id])
