"""The CLI convention: one line, exit status 2, no traceback, quiet TensorFlow."""
import subprocess
import sys
import textwrap

import pytest

_PROGRAM = textwrap.dedent("""
    import sys
    from movinet_tf import cli
    cli.quiet_tensorflow()
    from absl import flags
    flags.DEFINE_string("what", "value", "which error")

    def main(argv):
        kind = flags.FLAGS.what
        if kind == "value":
            raise ValueError("data.path 'x' is not a folder\\nsecond line")
        if kind == "user":
            raise cli.UserError("Video 'v.mp4' does not exist.")
        if kind == "bug":
            raise KeyError("a bug")
        print("ok")

    cli.run(main)
""")


def _run(*args):
    return subprocess.run([sys.executable, "-c", _PROGRAM, *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("kind,message", [("value", "data.path 'x' is not a folder"),
                                          ("user", "Video 'v.mp4' does not exist.")])
def test_user_errors_are_one_line_and_exit_2(kind, message):
    result = _run(f"--what={kind}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback_and_bugs_are_not_hidden():
    result = _run("--what=value", "--verbose")
    assert result.returncode != 0 and "Traceback" in result.stderr
    result = _run("--what=bug")
    assert result.returncode == 1 and "KeyError" in result.stderr


def test_an_unknown_flag_is_one_line_and_exit_2():
    result = _run("--no_such_flag=3")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "no_such_flag" in result.stderr
