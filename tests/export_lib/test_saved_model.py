"""SavedModel export, loaded with plain TensorFlow in a process without movinet_tf."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import movinet_tf
from helpers import randomize_weights, random_video
from movinet_tf.data.contract import InputContract
from movinet_tf.export_lib import export_saved_model

TINY_SPEC = "stem 8\nblock 8: e16_k155_s2\nblock 16: e32_k333_s2 e32_k333\nhead 32\nclassifier 64"
LABELS = ["a", "b", "c", "d"]

# Runs in a fresh interpreter: plain TF only. Prints one JSON line.
_LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    path, video_path, out_path = sys.argv[1:4]
    video = np.load(video_path)
    loaded = tf.saved_model.load(path)
    assert "movinet_tf" not in sys.modules, "movinet_tf was imported"
    sigs = loaded.signatures
    default = sigs["serving_default"](image=tf.constant(video))
    as_uint8 = sigs["serving_uint8"](image=tf.constant(np.round(video * 255).astype(np.uint8)))
    states = sigs["init_states"](input_shape=tf.constant(video.shape, tf.int32))
    first = sigs["call"](image=tf.constant(video[:, :3]), **states)
    rest = dict(first)
    rest.pop("logits")
    second = sigs["call"](image=tf.constant(video[:, 3:]), **rest)
    np.savez(out_path, logits=default["logits"].numpy(), uint8_logits=as_uint8["logits"].numpy(),
             top_k_probs=default["top_k_probs"].numpy(), stream_logits=second["logits"].numpy())
    print(json.dumps({
        "signatures": sorted(sigs),
        "top_k_labels": default["top_k_labels"].numpy().astype(str).tolist(),
        "num_states": len(states),
        "state_names": sorted(states),
        "image_size": int(loaded.image_size.numpy()),
        "frame_rate": float(loaded.frame_rate.numpy()),
        "input_contract": json.loads(loaded.input_contract.numpy().decode()),
        "movinet_tf_imported": "movinet_tf" in sys.modules,
    }))
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = movinet_tf.build_model("tiny", stream=True, num_classes=4, block_specs=TINY_SPEC)
    randomize_weights(model, seed=2)
    path = tmp_path_factory.mktemp("sm") / "saved_model"
    export_saved_model(model, path, labels=LABELS, top_k=3,
                       contract=InputContract(frame_rate=12.5, image_size=24, min_image_size=28))
    return model, str(path)


@pytest.mark.slow
def test_loads_without_movinet_tf(exported, tmp_path):
    model, path = exported
    video = random_video([2, 6, 24, 24, 3], seed=4)
    np.save(tmp_path / "video.npy", video)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", _LOADER, path, str(tmp_path / "video.npy"),
         str(tmp_path / "out.npz")], capture_output=True, text=True, env=env, cwd=str(tmp_path),
        timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert not info["movinet_tf_imported"]
    assert info["signatures"] == ["call", "init_states", "serving_default", "serving_uint8"]
    expected_names = sorted(model.state_specs([2, 1, 24, 24, 3]))
    assert info["state_names"] == expected_names and info["num_states"] == 10
    assert info["image_size"] == 24
    # The input contract travels with the model, readable without movinet_tf.
    assert info["frame_rate"] == 12.5
    assert InputContract.from_dict(info["input_contract"]) == InputContract(
        frame_rate=12.5, image_size=(24, 24), min_image_size=28)
    out = np.load(tmp_path / "out.npz")
    expected = model(video).numpy()
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(out["logits"], expected, atol=1e-4, rtol=0)
    # uint8 input is scaled by 1/255: only the rounding to 8 bits differs.
    rounded = np.round(video * 255) / 255
    np.testing.assert_allclose(out["uint8_logits"], model(rounded.astype(np.float32)).numpy(),
                               atol=1e-4, rtol=0)
    # Streaming 3 + 3 frames through `call` equals the whole clip.
    np.testing.assert_allclose(out["stream_logits"], expected, atol=1e-4, rtol=0)
    # Top-k labels and probabilities come from the embedded label list and softmax.
    probabilities = np.exp(expected) / np.exp(expected).sum(-1, keepdims=True)
    order = np.argsort(-probabilities, axis=-1)[:, :3]
    assert info["top_k_labels"] == [[LABELS[i] for i in row] for row in order]
    np.testing.assert_allclose(out["top_k_probs"], np.take_along_axis(probabilities, order, -1),
                               atol=1e-5)


def test_refuses_to_overwrite_and_checks_labels(exported, tmp_path):
    model, path = exported
    with pytest.raises(ValueError, match="already exists"):
        export_saved_model(model, path)
    with pytest.raises(ValueError, match="4 classes"):
        export_saved_model(model, tmp_path / "other", labels=["x"])
    assert not os.path.exists(tmp_path / "other")


def test_signatures_refuse_bad_inputs_naming_them(exported):
    import tensorflow as tf
    _, path = exported
    sigs = tf.saved_model.load(path).signatures
    empty = tf.zeros([1, 0, 24, 24, 3])
    with pytest.raises(tf.errors.InvalidArgumentError, match="image: the clip has T=0 frames"):
        sigs["serving_default"](image=empty)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_shape (must have 5 elements|\[4\] is not compatible with expected shape \[5\])"):
        sigs["init_states"](input_shape=tf.constant([1, 24, 24, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_shape .* must be >= 1"):
        sigs["init_states"](input_shape=tf.constant([1, 1, -24, 24, 3]))
    states = sigs["init_states"](input_shape=tf.constant([1, 1, 24, 24, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image: the clip has T=0 frames"):
        sigs["call"](image=empty, **states)
    name = next(name for name in states if name.endswith("frame_count"))
    bad = {**states, name: -tf.ones_like(states[name])}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"state {name} is negative"):
        sigs["call"](image=tf.zeros([1, 1, 24, 24, 3]), **bad)
    outputs = sigs["call"](image=tf.zeros([1, 2, 24, 24, 3]), **states)
    assert np.isfinite(outputs["logits"].numpy()).all()


def test_overwrite_replaces_only_a_saved_model_or_an_empty_folder(tmp_path):
    from movinet_tf.export_lib.saved_model_export import check_replaceable
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint", "ckpt-2.index", "config.yaml"):
        (run / name).write_text("keep me")
    with pytest.raises(ValueError, match=r"is not a SavedModel \(it holds checkpoint, ckpt-2"):
        check_replaceable(str(run), overwrite=True)
    with pytest.raises(ValueError, match="pass --overwrite"):
        check_replaceable(str(run), overwrite=False)
    saved_model = tmp_path / "sm"
    (saved_model / "variables").mkdir(parents=True)
    (saved_model / "saved_model.pb").write_bytes(b"")
    check_replaceable(str(saved_model), overwrite=True)
    (saved_model / "notes.txt").write_text("mine")   # a SavedModel with a user's file in it
    with pytest.raises(ValueError, match="notes.txt"):
        check_replaceable(str(saved_model), overwrite=True)
    (tmp_path / "empty").mkdir()
    check_replaceable(str(tmp_path / "empty"), overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        check_replaceable(str(tmp_path / "file"), overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint", "ckpt-2.index", "config.yaml"]
