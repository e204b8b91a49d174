"""The command-line convention every movinet_tf CLI follows.

* A user error (bad flag, missing file, wrong shape, config that does not
  validate) ends with one line ``error: <what is wrong>`` on stderr and exit
  status 2, no traceback. ``--verbose`` shows the traceback instead.
* TensorFlow's C++ INFO/WARNING lines and its Python warnings are hidden unless
  ``--verbose`` is given.

Usage, at the very top of a CLI module, before anything imports TensorFlow::

    from movinet_tf import cli
    cli.quiet_tensorflow()          # reads --verbose from sys.argv
    ...
    def run():
        cli.define_verbose_flag()
        cli.run(main)

This module imports neither TensorFlow nor anything that does (`import_tensorflow`
imports it when called).
"""
import contextlib
import logging as std_logging
import os
import sys
import warnings

from absl import app, flags

# Library errors that describe bad input rather than a bug: they carry a message
# written for the user (see the house style's error rule).
USER_ERRORS = (ValueError, TypeError, OSError)


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _verbose_requested(argv):
    return any(arg in ("--verbose", "--verbose=true", "--verbose=1", "--verbose=True")
               for arg in argv)


def quiet_tensorflow(argv=None):
    """Hides TensorFlow's log lines unless ``--verbose`` is on the command line.

    Must run before TensorFlow is imported to hide the C++ lines; the Python
    side (absl logging of TF, warnings) is silenced whenever it runs.
    """
    argv = sys.argv if argv is None else argv
    if _verbose_requested(argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # OpenCV's FFmpeg ("moov atom not found") and its own warnings: our errors say it.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    warnings.filterwarnings("ignore")
    std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
    # TensorFlow also logs through absl (e.g. ~35 KB of "will be renamed" warnings when a
    # SavedModel is saved); drop those below ERROR, keep our own.
    from absl import logging as absl_logging
    handler = absl_logging.get_absl_handler()
    if not any(isinstance(f, _LibraryLogFilter) for f in handler.filters):
        handler.addFilter(_LibraryLogFilter())


class _LibraryLogFilter(std_logging.Filter):
    """Rejects log records below ERROR that TensorFlow or Keras code emitted."""

    _LIBRARIES = ("tensorflow", "keras", "tf_keras")

    def filter(self, record):
        if record.levelno >= std_logging.ERROR:
            return True
        path = record.pathname.replace(os.sep, "/")
        return not any(f"/{name}/" in path for name in self._LIBRARIES)


def import_tensorflow(argv=None):
    """Imports TensorFlow with the process's stderr silenced, unless ``--verbose``.

    TensorFlow's C++ side prints a few lines while it loads (oneDNN, absl's
    "before InitializeLog" notice) whatever ``TF_CPP_MIN_LOG_LEVEL`` says. A CLI
    that needs TensorFlow anyway calls this after `quiet_tensorflow`; an error
    raised by the import itself still reaches the user. Returns the module.
    """
    argv = sys.argv if argv is None else argv
    if _verbose_requested(argv) or "tensorflow" in sys.modules:
        import tensorflow
        return tensorflow
    with quiet_native_stderr():
        import tensorflow
    return tensorflow


@contextlib.contextmanager
def quiet_native_stderr():
    """Hides what native code writes to stderr inside the block, unless ``--verbose``.

    LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate`` from C++ on
    the first invoke, whatever TF_CPP_MIN_LOG_LEVEL says. Python exceptions
    raised inside the block still propagate (and print after it).
    """
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def define_verbose_flag():
    """Defines ``--verbose`` once (CLIs define their flags at run time)."""
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_boolean("verbose", False, "Show TensorFlow's log lines and full tracebacks.")


def verbose():
    """Whether ``--verbose`` was given (False before the flags are parsed)."""
    try:
        return bool(flags.FLAGS["verbose"].value)
    except KeyError:
        return _verbose_requested(sys.argv)


def fail(message, status=2):
    """Prints ``error: message`` (first line only) and exits with `status`."""
    lines = str(message).strip().splitlines() or ["unknown error"]
    print(f"error: {lines[0]}", file=sys.stderr, flush=True)
    sys.exit(status)


def run(main, user_errors=USER_ERRORS):
    """`absl.app.run(main)` with the convention above.

    `UserError`, `app.UsageError`, flag parsing errors and `user_errors` end as
    one line and exit status 2; with ``--verbose`` they raise as usual.
    """
    def wrapped(argv):
        try:
            return main(argv)
        except (UserError, app.UsageError, *user_errors) as error:
            if verbose():
                raise
            fail(error)
    def parse_flags(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:   # Unknown flag, bad value: one line too.
            fail(error)

    define_verbose_flag()
    app.run(wrapped, flags_parser=parse_flags)
