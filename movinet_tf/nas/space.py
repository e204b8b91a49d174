"""The MoViNet architecture search space, as data.

The paper's space (MobileNetV3-style, in 3D): a stem and 5 blocks. Each block
picks a width and a number of layers; each layer picks an expansion width and
a depthwise kernel from ``1x3x3, 1x5x5, 1x7x7, 5x1x1, 7x1x1, 3x3x3, 5x3x3``.
The first layer of every block except the 4th downsamples space by 2. Every
layer has squeeze-excitation, and the head and classifier are those of the
models. A point of the space decodes to a `ModelSpec`, i.e. a spec string of
the same form as A0-A5, so ``build_model(..., block_specs=format_spec(spec))``
and a training config build it.

How the choices of `movinet_space()` were derived (docs/search.md explains the
same with a table):

* Block widths: the paper's base widths (stem 16; blocks 24, 48, 96, 96, 192;
  head 512) times the multipliers {0.75, 1, 1.25}, rounded to multiples of 8.
  The published models were grown from the searched model by compound scaling,
  which moved widths off that grid (A0's block 0 has width 8), so the widths
  the published A0-A5 use are added to each block's set.
* Layers: 1..10 per block in the paper. Depth scaling took A4 and A5 past 10
  (A5's last block has 18 layers), so the maximum is raised per block to the
  published maximum.
* Expansion: a ratio to the block width, ``expand = round8(ratio * width)``.
  The paper gives no grid. Ratios in ninths from 5/3 to 4 (22 choices) form the
  coarsest uniform grid on which every published A0-A5 layer lies, with the
  models' own rounding (of the 57 published (width, expansion) pairs, a grid in
  sixths misses 4, eighths 13, twelfths 1).
* The classifier's hidden width is one choice in the paper's space (2048, as in
  A0-A5); a custom space may offer several (``classifier_widths``).

Decisions are a flat list (see `SearchSpace.decisions`): ``stem_width``, then
per block ``block{b}_width``, ``block{b}_layers`` and, for every layer slot up to
the block's maximum, ``block{b}_layer{l}_expand`` / ``block{b}_layer{l}_kernel``,
then ``head_width`` and ``classifier_width``. Layer slots past the sampled
depth are unused.
"""
import dataclasses
import fractions

import numpy as np

from movinet_tf.layers.attention import make_divisible
from movinet_tf.models import specs as specs_lib

# The paper's kernel choices (t, h, w).
KERNELS = ((1, 3, 3), (1, 5, 5), (1, 7, 7), (5, 1, 1), (7, 1, 1), (3, 3, 3), (5, 3, 3))
# Index of the block whose first layer does not downsample (the 4th).
UNSTRIDED_BLOCKS = (3,)

PAPER_BASE_WIDTHS = {"stem": 16, "blocks": (24, 48, 96, 96, 192), "head": 512}
PAPER_WIDTH_MULTIPLIERS = (0.75, 1.0, 1.25)
PAPER_MAX_LAYERS = 10


def round8(value):
    """Rounds a width to a multiple of 8 the way the models do (`make_divisible`)."""
    return make_divisible(value, 8)


def parse_ratio(value):
    """An expansion ratio from an int, float or text such as '8/3'; returns a Fraction.

    Raises:
        ValueError: for text that is not a positive number.
    """
    try:
        ratio = fractions.Fraction(str(value)).limit_denominator(1000)
    except (ValueError, ZeroDivisionError) as error:
        raise ValueError(f"Bad expansion ratio {value!r}; expected a number such as 3 or '8/3'."
                         ) from error
    if ratio <= 0:
        raise ValueError(f"Expansion ratio {value!r} must be > 0.")
    return ratio


def parse_kernel(value):
    """A kernel (t, h, w) from a tuple or text such as '5x3x3'.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(value, str):
        parts = value.lower().split("x")
    else:
        parts = list(value)
    try:
        kernel = tuple(int(p) for p in parts)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Bad kernel {value!r}; expected 't x h x w' text like '5x3x3'.") from error
    if len(kernel) != 3 or min(kernel) < 1 or max(kernel) > 9:
        raise ValueError(f"Bad kernel {value!r}; expected three sizes 1..9 like '5x3x3'.")
    return kernel


def kernel_text(kernel):
    return "x".join(str(k) for k in kernel)


@dataclasses.dataclass(frozen=True)
class Decision:
    """One categorical choice the controller makes."""
    name: str
    choices: tuple


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A MobileNetV3-style 3D search space.

    Attributes:
        stem_widths: choices of the stem width.
        block_widths: per block, the choices of its width (all its layers output it).
        max_layers: per block, the most layers it may have (at least `min_layers`).
        expand_ratios: expansion width choices as ratios to the block width
            (Fractions); ``expand = round8(ratio * block_width)``.
        kernels: depthwise kernel choices (t, h, w).
        head_widths: choices of the head's projection width.
        classifier_widths: choices of the classifier's hidden width.
        min_layers: the fewest layers a block may have.
    """
    stem_widths: tuple
    block_widths: tuple
    max_layers: tuple
    expand_ratios: tuple
    kernels: tuple = KERNELS
    head_widths: tuple = (512,)
    classifier_widths: tuple = (2048,)
    min_layers: int = 1

    def __post_init__(self):
        def ints(name, values):
            values = tuple(values)
            if not values or any(not isinstance(v, (int, np.integer)) or v < 1 for v in values):
                raise ValueError(f"space.{name} must be a non-empty list of positive ints, got "
                                 f"{values!r}.")
            return tuple(int(v) for v in values)

        object.__setattr__(self, "stem_widths", ints("stem_widths", self.stem_widths))
        blocks = tuple(ints(f"block_widths[{i}]", w) for i, w in enumerate(self.block_widths))
        if len(blocks) != 5:
            raise ValueError(f"space.block_widths must list 5 blocks, got {len(blocks)}.")
        object.__setattr__(self, "block_widths", blocks)
        max_layers = ints("max_layers", self.max_layers)
        if len(max_layers) != len(blocks):
            raise ValueError(f"space.max_layers must have one entry per block ({len(blocks)}), "
                             f"got {max_layers}.")
        if self.min_layers < 1 or min(max_layers) < self.min_layers:
            raise ValueError(f"space.min_layers ({self.min_layers}) must be >= 1 and <= every "
                             f"max_layers entry {max_layers}.")
        object.__setattr__(self, "max_layers", max_layers)
        ratios = tuple(parse_ratio(r) for r in self.expand_ratios)
        if not ratios:
            raise ValueError("space.expand_ratios must not be empty.")
        object.__setattr__(self, "expand_ratios", ratios)
        kernels = tuple(parse_kernel(k) for k in self.kernels)
        if not kernels:
            raise ValueError("space.kernels must not be empty.")
        object.__setattr__(self, "kernels", kernels)
        object.__setattr__(self, "head_widths", ints("head_widths", self.head_widths))
        object.__setattr__(self, "classifier_widths",
                           ints("classifier_widths", self.classifier_widths))
        # Decisions are asked for on every encode/decode; build them once.
        object.__setattr__(self, "_decisions", tuple(self._make_decisions()))
        object.__setattr__(self, "_positions", {d.name: i for i, d in enumerate(self._decisions)})

    # ------------------------------------------------------------ decisions

    @property
    def num_blocks(self):
        return len(self.block_widths)

    def layer_counts(self, block):
        return tuple(range(self.min_layers, self.max_layers[block] + 1))

    def decisions(self):
        """The flat list of `Decision`s; an architecture is one index per decision."""
        return list(self._decisions)

    def _make_decisions(self):
        out = [Decision("stem_width", self.stem_widths)]
        for b in range(self.num_blocks):
            out.append(Decision(f"block{b}_width", self.block_widths[b]))
            out.append(Decision(f"block{b}_layers", self.layer_counts(b)))
            for l in range(self.max_layers[b]):
                out.append(Decision(f"block{b}_layer{l}_expand", self.expand_ratios))
                out.append(Decision(f"block{b}_layer{l}_kernel", self.kernels))
        out.append(Decision("head_width", self.head_widths))
        out.append(Decision("classifier_width", self.classifier_widths))
        return out

    def _index(self):
        return self._positions

    def check_indices(self, indices):
        """Checks one choice index per decision; returns them as a tuple of ints.

        Raises:
            ValueError: wrong length or an index out of its decision's range.
        """
        decisions = self._decisions
        indices = tuple(int(i) for i in indices)
        if len(indices) != len(decisions):
            raise ValueError(f"Expected {len(decisions)} decision indices, got {len(indices)}.")
        for decision, index in zip(decisions, indices):
            if not 0 <= index < len(decision.choices):
                raise ValueError(f"Decision {decision.name!r} index {index} out of range "
                                 f"0..{len(decision.choices) - 1}.")
        return indices

    def used_mask(self, indices):
        """Which decisions matter for `indices` (layer slots past the depth do not)."""
        indices = self.check_indices(indices)
        position = self._index()
        mask = [True] * len(indices)
        for b in range(self.num_blocks):
            depth = self.layer_counts(b)[indices[position[f"block{b}_layers"]]]
            for l in range(depth, self.max_layers[b]):
                mask[position[f"block{b}_layer{l}_expand"]] = False
                mask[position[f"block{b}_layer{l}_kernel"]] = False
        return mask

    def expand_width(self, ratio, block_width):
        return round8(ratio * block_width)

    def decode(self, indices):
        """The `ModelSpec` of one choice index per decision."""
        indices = self.check_indices(indices)
        position = self._index()

        def pick(name):
            return self._decisions[position[name]].choices[indices[position[name]]]

        blocks = []
        for b in range(self.num_blocks):
            width = pick(f"block{b}_width")
            layers = []
            for l in range(pick(f"block{b}_layers")):
                stride = 2 if l == 0 and b not in UNSTRIDED_BLOCKS else 1
                layers.append(specs_lib.LayerSpec(
                    self.expand_width(pick(f"block{b}_layer{l}_expand"), width),
                    pick(f"block{b}_layer{l}_kernel"), stride))
            blocks.append(specs_lib.BlockSpec(width, tuple(layers)))
        return specs_lib.ModelSpec(pick("stem_width"), tuple(blocks), pick("head_width"),
                                   pick("classifier_width"))

    def encode(self, spec):
        """Choice indices of a `ModelSpec` (or spec string) in this space.

        Unused layer slots get index 0. ``decode(encode(s)) == s``.

        Raises:
            ValueError: naming the first part of `spec` outside the space.
        """
        if isinstance(spec, str):
            spec = specs_lib.parse_spec(spec)
        decisions = self.decisions()
        position = self._index()
        indices = [0] * len(decisions)

        def put(name, value, where):
            choices = decisions[position[name]].choices
            if value not in choices:
                raise ValueError(f"{where}: {value!r} is not in the space's choices "
                                 f"{list(choices)} for {name!r}.")
            indices[position[name]] = choices.index(value)

        if len(spec.blocks) != self.num_blocks:
            raise ValueError(f"The spec has {len(spec.blocks)} blocks; the space has "
                             f"{self.num_blocks}.")
        put("stem_width", spec.stem_filters, "stem")
        put("head_width", spec.head_filters, "head")
        put("classifier_width", spec.classifier_filters, "classifier")
        for b, block in enumerate(spec.blocks):
            put(f"block{b}_width", block.out_filters, f"block {b}")
            put(f"block{b}_layers", len(block.layers), f"block {b} depth")
            for l, layer in enumerate(block.layers):
                where = f"block {b} layer {l} ({layer.token()})"
                want_stride = 2 if l == 0 and b not in UNSTRIDED_BLOCKS else 1
                if layer.spatial_stride != want_stride:
                    raise ValueError(f"{where}: stride {layer.spatial_stride}, but the space "
                                     f"puts stride {want_stride} here.")
                put(f"block{b}_layer{l}_kernel", tuple(layer.kernel_size), where)
                ratios = [r for r in self.expand_ratios
                          if self.expand_width(r, block.out_filters) == layer.expand_filters]
                if not ratios:
                    raise ValueError(f"{where}: expansion {layer.expand_filters} is not "
                                     f"round8(ratio * {block.out_filters}) for any ratio in "
                                     f"the space.")
                indices[position[f"block{b}_layer{l}_expand"]] = \
                    self.expand_ratios.index(ratios[0])
        return tuple(indices)

    def contains(self, spec):
        """Whether a `ModelSpec` (or spec string) is a point of the space."""
        try:
            self.encode(spec)
        except ValueError:
            return False
        return True

    def sample(self, rng):
        """A uniformly random point: choice indices, drawn with numpy Generator `rng`."""
        return tuple(int(rng.integers(len(d.choices))) for d in self.decisions())

    def sample_widest(self, rng):
        """The widest, deepest point with its kernels drawn uniformly: choice indices.

        Every width, layer count and expansion takes its largest choice, so every
        weight of the supernet is used; only the depthwise kernels vary (the
        space has no one largest kernel: 1x7x7 and 5x3x3 each lack taps of the
        other). The first phase of the search's warm-up (``search.largest_steps``).
        """
        return tuple(int(rng.integers(len(d.choices))) if d.name.endswith("_kernel")
                     else max(range(len(d.choices)), key=d.choices.__getitem__)
                     for d in self.decisions())

    def log10_size(self):
        """log10 of the number of distinct architectures."""
        total = (np.log10(len(self.stem_widths)) + np.log10(len(self.head_widths))
                 + np.log10(len(self.classifier_widths)))
        per_layer = len(self.expand_ratios) * len(self.kernels)
        for b in range(self.num_blocks):
            depths = sum(float(per_layer) ** n for n in self.layer_counts(b))
            total += np.log10(len(self.block_widths[b])) + np.log10(depths)
        return float(total)

    # ------------------------------------------------------------ largest choices

    def largest(self):
        """The widest and largest-kernel choices the supernet must hold weights for."""
        max_ratio = max(self.expand_ratios)
        return {
            "stem": max(self.stem_widths),
            "blocks": tuple(max(w) for w in self.block_widths),
            "expand": tuple(max(self.expand_width(max_ratio, w) for w in widths)
                            for widths in self.block_widths),
            "kernel": tuple(max(k[i] for k in self.kernels) for i in range(3)),
            "head": max(self.head_widths),
            "classifier": max(self.classifier_widths),
        }

    def to_dict(self):
        """Plain data (what the search writes into its summary)."""
        return {
            "stem_widths": list(self.stem_widths),
            "block_widths": [list(w) for w in self.block_widths],
            "max_layers": list(self.max_layers),
            "expand_ratios": [str(r) for r in self.expand_ratios],
            "kernels": [kernel_text(k) for k in self.kernels],
            "head_widths": list(self.head_widths),
            "classifier_widths": list(self.classifier_widths),
            "min_layers": self.min_layers,
        }


def _paper_widths(base):
    return {round8(base * m) for m in PAPER_WIDTH_MULTIPLIERS}


def movinet_space():
    """The paper's search space, widened so that the published A0-A5 are points of it.

    See the module docstring for how each choice list was derived.
    """
    published = [specs_lib.get_spec(m) for m in ("a0", "a1", "a2", "a3", "a4", "a5")]
    stem = _paper_widths(PAPER_BASE_WIDTHS["stem"]) | {s.stem_filters for s in published}
    head = _paper_widths(PAPER_BASE_WIDTHS["head"]) | {s.head_filters for s in published}
    blocks, max_layers = [], []
    for b, base in enumerate(PAPER_BASE_WIDTHS["blocks"]):
        widths = _paper_widths(base) | {s.blocks[b].out_filters for s in published}
        blocks.append(tuple(sorted(widths)))
        max_layers.append(max([PAPER_MAX_LAYERS] + [len(s.blocks[b].layers) for s in published]))
    ratios = tuple(fractions.Fraction(k, 9) for k in range(15, 37))
    return SearchSpace(stem_widths=tuple(sorted(stem)), block_widths=tuple(blocks),
                       max_layers=tuple(max_layers), expand_ratios=ratios, kernels=KERNELS,
                       head_widths=tuple(sorted(head)), classifier_widths=(2048,))
