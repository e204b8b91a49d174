"""The search space: the published models are points of it, samples stay inside it."""
import numpy as np
import pytest

import movinet_tf
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import space as space_lib
from movinet_tf.nas.space import KERNELS, SearchSpace, movinet_space
from tests.nas.spaces import small_space


@pytest.fixture
def space():
    return small_space()


@pytest.mark.parametrize("model_id", ["a0", "a1", "a2", "a3", "a4", "a5"])
def test_published_models_are_points_of_the_paper_space(model_id):
    space = movinet_space()
    spec = movinet_tf.get_spec(model_id)
    indices = space.encode(spec)
    assert space.decode(indices) == spec
    assert space.contains(specs_lib.MODEL_SPECS[model_id])


def test_paper_space_choices():
    space = movinet_space()
    assert space.kernels == KERNELS and len(KERNELS) == 7
    # The paper's base widths x {0.75, 1, 1.25}, rounded to multiples of 8, are all choices.
    for b, base in enumerate(space_lib.PAPER_BASE_WIDTHS["blocks"]):
        for multiplier in (0.75, 1.0, 1.25):
            assert space_lib.round8(base * multiplier) in space.block_widths[b]
    assert set(space.head_widths) >= {384, 512, 640}
    assert min(space.max_layers) == 10  # the paper's limit, raised only where A4/A5 need it
    assert space.max_layers == (10, 11, 13, 11, 18)
    assert len(space.expand_ratios) == 22
    # T0 has a 1024-wide classifier: not a point of a space with the A-models' 2048.
    assert not space.contains(movinet_tf.get_spec("t0"))


def test_sampled_architectures_respect_the_space(space):
    rng = np.random.default_rng(0)
    depths, classifiers = set(), set()
    for _ in range(200):
        indices = space.sample(rng)
        spec = space.decode(indices)
        assert specs_lib.parse_spec(specs_lib.format_spec(spec)) == spec
        assert space.encode(spec) == tuple(i if used else 0 for i, used
                                           in zip(indices, space.used_mask(indices)))
        assert spec.stem_filters in space.stem_widths
        assert spec.head_filters in space.head_widths
        assert spec.classifier_filters in space.classifier_widths
        classifiers.add(spec.classifier_filters)
        for b, block in enumerate(spec.blocks):
            assert block.out_filters in space.block_widths[b]
            assert 1 <= len(block.layers) <= space.max_layers[b]
            depths.add((b, len(block.layers)))
            allowed = {space_lib.round8(r * block.out_filters) for r in space.expand_ratios}
            for l, layer in enumerate(block.layers):
                assert layer.kernel_size in space.kernels
                assert layer.expand_filters in allowed
                # Strided downsampling in the first layer of every block but the 4th.
                assert layer.spatial_stride == (2 if l == 0 and b != 3 else 1)
    # Every depth of every block was drawn: depth is really searched.
    assert depths == {(b, n) for b in range(5) for n in range(1, space.max_layers[b] + 1)}
    assert classifiers == set(space.classifier_widths)  # the classifier width is searched


def test_a_sampled_architecture_builds_and_runs(space):
    spec = space.decode(space.sample(np.random.default_rng(1)))
    model = movinet_tf.build_model("sampled", stream=True, num_classes=3,
                                   block_specs=specs_lib.format_spec(spec))
    logits = model(np.zeros([1, 4, 32, 32, 3], np.float32))
    assert logits.shape == (1, 3)
    assert model.backbone.spec == spec


def test_encode_names_what_is_outside_the_space(space):
    spec = space.decode(space.sample(np.random.default_rng(2)))
    wide = spec.__class__(spec.stem_filters, spec.blocks, 999, spec.classifier_filters)
    with pytest.raises(ValueError, match="999.*head_width"):
        space.encode(wide)
    with pytest.raises(ValueError, match="classifier: 40 .*classifier_width"):
        space.encode(spec.__class__(spec.stem_filters, spec.blocks, spec.head_filters, 40))
    block = spec.blocks[3]
    strided = block.__class__(block.out_filters, (block.layers[0].__class__(
        block.layers[0].expand_filters, block.layers[0].kernel_size, 2),) + block.layers[1:])
    bad = spec.__class__(spec.stem_filters, spec.blocks[:3] + (strided,) + spec.blocks[4:],
                         spec.head_filters, spec.classifier_filters)
    with pytest.raises(ValueError, match="block 3 layer 0.*stride 2"):
        space.encode(bad)


def test_bad_space_definitions_are_rejected():
    good = dict(stem_widths=(8,), block_widths=((8,),) * 5, max_layers=(1,) * 5,
                expand_ratios=("3",))
    SearchSpace(**good)
    with pytest.raises(ValueError, match="5 blocks"):
        SearchSpace(**{**good, "block_widths": ((8,),) * 4})
    with pytest.raises(ValueError, match="kernel"):
        SearchSpace(**{**good, "kernels": ("3x3",)})
    with pytest.raises(ValueError, match="ratio"):
        SearchSpace(**{**good, "expand_ratios": ("three",)})
    with pytest.raises(ValueError, match="max_layers"):
        SearchSpace(**{**good, "max_layers": (1, 1)})


def test_sample_widest_takes_every_largest_choice_and_varies_only_kernels(space):
    rng = np.random.default_rng(0)
    largest = space.largest()
    kernels = set()
    for _ in range(50):
        spec = space.decode(space.sample_widest(rng))
        assert spec.stem_filters == largest["stem"]
        assert spec.head_filters == largest["head"]
        for b, block in enumerate(spec.blocks):
            assert block.out_filters == largest["blocks"][b]
            assert len(block.layers) == space.max_layers[b]
            assert {layer.expand_filters for layer in block.layers} == {largest["expand"][b]}
            kernels.update(layer.kernel_size for layer in block.layers)
    assert kernels == set(space.kernels)
