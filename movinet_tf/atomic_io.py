"""Atomic writes that follow the umask: a reader never sees a half-written file.

Every file and folder the project writes (configs, checkpoint side files, TFLite
files, manifests, labels, SavedModels, plots, annotated videos) goes through
here. A temporary name in the destination folder is written, given the mode a
plain ``open()`` or ``mkdir`` would have given it under the current umask
(``tempfile`` makes them 0600/0700, which another user, e.g. a model server,
cannot read), and renamed into place.

    atomic_io.write_text("run/config.yaml", text)
    with atomic_io.temporary_path("out/video.mp4") as tmp:
        writer = cv2.VideoWriter(tmp, ...)   # write under `tmp`; renamed on success
"""
import contextlib
import os
import shutil
import tempfile


def current_umask():
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode():
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def dir_mode():
    """The mode ``os.mkdir`` gives a new folder: 0o777 less the umask."""
    return 0o777 & ~current_umask()


def _temp_name(path, suffix):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=suffix, dir=directory)
    os.close(fd)
    return tmp


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def temporary_path(path, suffix=None):
    """Yields a temporary file path beside `path`; renames it onto `path` on success.

    The file exists (empty) when the block starts, so a writer that needs a name
    (OpenCV, matplotlib) can write to it. On an exception it is removed and `path`
    is left as it was. The default suffix is `path`'s extension, which some
    writers use to pick the format.
    """
    path = os.fspath(path)
    tmp = _temp_name(path, os.path.splitext(path)[1] if suffix is None else suffix)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_bytes(path, data, fsync=True):
    """Writes `data` to `path` atomically, with the umask's mode."""
    with temporary_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def write_text(path, text, fsync=True):
    """Writes `text` (UTF-8) to `path` atomically, with the umask's mode."""
    write_bytes(path, text.encode("utf-8"), fsync=fsync)


def fix_tree_modes(root):
    """Gives every folder and file under `root` (included) the umask's modes.

    For trees written by libraries that create 0700/0600 entries (a temp folder
    made by `tempfile.mkdtemp`, for instance).
    """
    folder, file = dir_mode(), file_mode()
    os.chmod(root, folder)
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(parent, name), folder)
        for name in files:
            os.chmod(os.path.join(parent, name), file)


@contextlib.contextmanager
def temporary_dir(path):
    """Yields an empty temporary folder beside `path`, for a tree to be swapped in.

    On success the tree's modes are set from the umask and the folder is left
    in place for the caller to rename (see `replace_dir`); on an exception it is
    removed.
    """
    path = os.fspath(path).rstrip(os.sep)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", dir=parent)
    try:
        yield tmp
        fix_tree_modes(tmp)
    except BaseException:
        _remove(tmp)
        raise


def replace_dir(new_dir, path):
    """Moves the finished folder `new_dir` onto `path`.

    If `path` exists it is first renamed aside and removed only after the new
    tree is in place, so there is never a moment with neither. The caller
    decides whether `path` may be replaced at all.
    """
    path = os.fspath(path).rstrip(os.sep)
    old = None
    if os.path.lexists(path):
        old = _temp_name(path, ".old")
        os.remove(old)
        os.replace(path, old)
    try:
        os.replace(new_dir, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        _remove(old)
