"""`InputContract`: built from the run config, round-tripped through the manifest form."""
import dataclasses

import pytest

from movinet_tf import config as config_lib
from movinet_tf.data import DataConfig, InputContract, validate_config


def test_the_config_gives_the_training_rate_and_sizes():
    cfg = config_lib.load_config("tiny")
    assert cfg.data.video_fps == 25.0
    contract = InputContract.from_data_config(cfg.data)
    assert contract.frame_rate == 12.5   # 25 fps at stride 2
    assert contract.image_size == (32, 32) and contract.min_image_size == 32
    quickstart = InputContract.from_data_config(DataConfig(video_fps=30.0, temporal_stride=5))
    assert quickstart.frame_rate == 6.0 and quickstart.min_image_size == 64
    # At another export side the short side keeps its ratio to the crop.
    assert InputContract.from_data_config(DataConfig(), image_size=112).min_image_size == 128
    assert quickstart.at_image_size(112).min_image_size == 128


def test_manifest_form_round_trips_and_is_the_shared_schema():
    contract = InputContract(frame_rate=5.0, image_size=(172, 172), min_image_size=200,
                             dtype="uint8", quantization=(1 / 255, 0))
    entry = contract.to_dict()
    assert entry == {"frame_rate": 5.0, "image_size": [172, 172], "min_image_size": 200,
                     "value_range": [0.0, 1.0], "channels": "RGB", "dtype": "uint8",
                     "quantization": {"scale": 1 / 255, "zero_point": 0}}
    assert InputContract.from_dict(entry) == contract
    assert InputContract.from_dict(contract.to_json()) == contract


@pytest.mark.parametrize("changes,message", [
    ({"frame_rate": -5.0}, "frame_rate"),
    ({"frame_rate": float("nan")}, "frame_rate"),
    ({"min_image_size": 40}, "min_image_size"),
    ({"dtype": "uint8"}, "needs quantization"),
    ({"quantization": (0.5, 0)}, "no quantization"),
    ({"value_range": (1.0, 0.0)}, "value_range"),
])
def test_bad_contracts_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        InputContract(**{**dict(frame_rate=12.5, image_size=(56, 56), min_image_size=64),
                         **changes})
    with pytest.raises(ValueError, match="unknown key"):
        InputContract.from_dict({"frame_rate": 5.0, "fps": 5.0})


@pytest.mark.parametrize("value", [0.0, -25.0, 5000.0, True])
def test_video_fps_is_range_checked(value):
    with pytest.raises(ValueError, match="data.video_fps"):
        validate_config(dataclasses.replace(DataConfig(), video_fps=value))


def test_frame_rate_of_weights_without_a_config_is_stated_not_guessed():
    from movinet_tf.export_lib import load_model
    loaded = load_model(model_id="a0", num_classes=3, image_size=32)
    assert loaded.contract.frame_rate is None          # random weights: unknown, not a default
    loaded.set_frame_rate(5.0)
    assert loaded.contract.frame_rate == 5.0
    assert loaded.model.input_contract is loaded.contract   # what the exporters read
    with pytest.raises(ValueError, match="frame_rate"):
        loaded.set_frame_rate(-1.0)
