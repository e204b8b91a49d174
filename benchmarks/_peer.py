"""Shared helpers for running the official TF Model Garden MoViNet beside ours.

The official code is Keras 2 (tf_keras) and must not share a process with
movinet_tf (Keras 3), so every official measurement runs Python code in a
subprocess with ``TF_USE_LEGACY_KERAS=1`` and reads one JSON line back.
Install it with ``make -f Makefile.reference install-reference``.
"""
# have_reference and official_env repeat tests/reference/peer.py on purpose: the official
# worker processes import this file under tf_keras, and importing movinet_tf (Keras 3,
# TensorFlow) there to share them would load the other Keras into the measured process.
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

INSTALL_HINT = "tf-models-official not installed (make install-reference)"

# Official Movinet keyword arguments for the two published configurations.
BASE_CONFIG = dict(causal=False, conv_type="3d", se_type="3d", activation="swish",
                   gating_activation="sigmoid", use_positional_encoding=False)
STREAM_CONFIG = dict(causal=True, conv_type="2plus1d", se_type="2plus3d",
                     activation="hard_swish", gating_activation="hard_sigmoid")
# The released stream models use positional encoding only from A3 up.
STREAM_POSITIONAL_ENCODING = ("a3", "a4", "a5")


def have_reference():
    """True when tf-models-official (with MoViNet) and tf_keras can be imported.

    Checked with `importlib.util.find_spec`, so nothing is imported.
    """
    if importlib.util.find_spec("tf_keras") is None:
        return False
    official = importlib.util.find_spec("official")
    if official is None or not official.submodule_search_locations:
        return False
    return any(
        os.path.isfile(os.path.join(location, "projects", "movinet", "modeling", "movinet.py"))
        for location in official.submodule_search_locations)


def official_env():
    """Environment for a subprocess that runs the official (tf_keras) code."""
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def official_config(model_id, stream):
    """Official `Movinet` keyword arguments for the base or released stream model."""
    config = dict(STREAM_CONFIG if stream else BASE_CONFIG)
    if stream:
        config["use_positional_encoding"] = model_id in STREAM_POSITIONAL_ENCODING
    return config


# Python source that defines `build(model_id, config, num_classes, external_states,
# image_shape)` returning the official classifier, for use inside the subprocess.
OFFICIAL_BUILD_SOURCE = textwrap.dedent("""
    import tf_keras
    from official.projects.movinet.modeling import movinet, movinet_model

    def build(model_id, config, num_classes=600, external_states=False,
              image_shape=(1, None, None, None, 3)):
        spec = tf_keras.layers.InputSpec(shape=list(image_shape))
        backbone = movinet.Movinet(model_id=model_id, input_specs=spec, use_sync_bn=False,
                                   use_external_states=external_states, output_states=True,
                                   **config)
        return movinet_model.MovinetClassifier(
            backbone, num_classes=num_classes, input_specs={"image": spec},
            activation=config["activation"], output_states=external_states)
""")


def run_python(code, env=None, timeout=1800):
    """Runs `code` with this Python in a subprocess; returns its last stdout line as JSON.

    Raises:
        RuntimeError: if the subprocess fails, with the tail of its stderr.
    """
    result = subprocess.run([sys.executable, "-c", code], env=env or dict(os.environ),
                            capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"subprocess failed ({result.returncode}):\n{result.stderr[-3000:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"subprocess printed nothing; stderr:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def official_param_counts(model_ids, stream, num_classes=600):
    """Official `count_params` for each model id, built in one subprocess.

    Returns:
        dict model_id -> int.
    """
    configs = {model_id: official_config(model_id, stream) for model_id in model_ids}
    code = OFFICIAL_BUILD_SOURCE + textwrap.dedent(f"""
        import json
        counts = {{}}
        for model_id, config in {configs!r}.items():
            model = build(model_id, config, num_classes={num_classes})
            counts[model_id] = int(model.count_params())
            tf_keras.backend.clear_session()
        print(json.dumps(counts))
    """)
    return run_python(code, env=official_env())
