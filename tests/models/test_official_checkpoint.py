"""The official checkpoint names derived from the layers cover every published model 1:1.

The names themselves are checked against checkpoints the official code writes in
tests/reference/test_official_peer.py (A0, three configurations).
"""
import re

import pytest

import movinet_tf
from movinet_tf.models import official_checkpoint

# The attribute grammar of the official MoViNet layers (shared/reference/official_movinet_spec.md).
_CONV = (r"(_conv/(kernel|bias)|_conv_temporal/kernel"
         r"|_batch_norm(_temporal)?/(gamma|beta|moving_mean|moving_variance))")
_BLOCK = (r"(_expansion|_feature|_projection|_skip/_projection|_attention/_se_(reduce|expand))/"
          rf"{_CONV}|_attention/_pos_encoding/_rezero/scale|_mobile_bottleneck/_rezero/scale")


def _check_one_to_one(model):
    names = official_checkpoint.official_names(model)
    by_variable = {}
    for key, variable in names.items():
        assert id(variable) not in by_variable, (key, by_variable.get(id(variable)))
        by_variable[id(variable)] = key
    assert sorted(v.path for v in model.weights) == sorted(v.path for v in names.values())
    last = len(model.backbone.blocks) + 1
    for part, layer, attr in names:
        if part == "1":
            assert re.fullmatch(r"_(head|classifier)/_conv/(kernel|bias)", attr), attr
        elif layer == "0":
            assert re.fullmatch(rf"_stem/{_CONV}", attr), attr
        elif layer == str(last):
            assert re.fullmatch(rf"_project/{_CONV}", attr), attr
        else:
            assert re.fullmatch(_BLOCK, attr), attr
    return names


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["a0", "a1", "a2", "a3", "a4", "a5"])
def test_every_weight_of_the_published_models_has_one_official_name(model_id):
    names = _check_one_to_one(movinet_tf.build_model(model_id, stream=True, num_classes=600))
    pos_enc = [key for key in names if key[2].startswith("_attention/_pos_encoding/")]
    assert bool(pos_enc) == (model_id in ("a3", "a4", "a5"))
    assert any(key[2] == "_feature/_conv_temporal/kernel" for key in names)


def test_base_model_names_have_no_temporal_convs():
    names = _check_one_to_one(movinet_tf.build_model("a0", num_classes=5))
    assert not any("_temporal" in attr for _, _, attr in names)
    assert ("1", None, "_classifier/_conv/bias") in names
