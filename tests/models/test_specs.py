import pytest

from movinet_tf.models import specs


@pytest.mark.parametrize("model_id", specs.MODEL_IDS)
def test_format_is_the_inverse_of_parse(model_id):
    text = specs.MODEL_SPECS[model_id].strip()
    assert specs.format_spec(specs.parse_spec(text)) == text
    spec = specs.parse_spec(text)
    assert specs.parse_spec(specs.format_spec(spec)) == spec


def test_published_layer_counts_and_strides():
    counts = {"a0": 15, "a1": 24, "a2": 26, "a3": 33, "a4": 47, "a5": 59, "t0": 14}
    for model_id, count in counts.items():
        spec = specs.get_spec(model_id)
        assert spec.num_layers == count
        # Downsampling in the first layer of blocks 0, 1, 2 and 4, never block 3.
        first_strides = [block.layers[0].spatial_stride for block in spec.blocks]
        assert first_strides == [2, 2, 2, 1, 2], model_id
        assert all(l.spatial_stride == 1 for b in spec.blocks for l in b.layers[1:])
    a0 = specs.get_spec("a0")
    assert a0.blocks[2].layers[0] == specs.LayerSpec(184, (5, 3, 3), 2)
    assert (a0.stem_filters, a0.head_filters, a0.classifier_filters) == (8, 480, 2048)
    assert specs.get_spec("t0").classifier_filters == 1024


@pytest.mark.parametrize("text,message", [
    ("stem 8\nblock 8: e24_k15_s2\nhead 4\nclassifier 8", "bad layer token"),
    ("stem 8\nblock 8: e24_k155_s3\nhead 4\nclassifier 8", "bad layer token"),
    ("stem 8\nblok 8: e24_k155\nhead 4\nclassifier 8", "unknown keyword 'blok'"),
    ("stem 8\nblock 8: e24_k155\nclassifier 8", "no 'head' line"),
    ("stem x\nblock 8: e24_k155\nhead 4\nclassifier 8", "positive integer"),
    ("stem 8\nblock 8:\nhead 4\nclassifier 8", "expected 'block <out>"),
])
def test_bad_specs_are_rejected_with_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        specs.parse_spec(text)


def test_unknown_model_id_lists_valid_ones():
    with pytest.raises(ValueError, match="a0, a1, a2, a3, a4, a5, t0"):
        specs.get_spec("a6")
