"""Video-file sources: class-per-folder trees and CSV lists.

Folder layout (UCF101 style)::

    root/<class>/<video>                 # split by a stable hash of the path
    root/<split>/<class>/<video>         # e.g. root/train/..., root/val/...

Class names are the sorted sub-folder names of ``root/<train_split>`` (or of
``root`` without split folders); label i is the i-th name. Videos anywhere
below a class folder belong to that class (``root/train/a/day1/x.mp4`` is class
``a``), and a training class folder without any video is an error.

CSV: one ``path,label[,split]`` row per video; an optional first row
``path,label[,split]`` is a header. `label` is a class name or an integer index;
relative paths are relative to the csv's folder. With a ``split`` column, the
rows of the requested split are used; a ``{split}`` in `path` picks a file per
split; otherwise rows are split by a stable hash of the path. Class names are
the sorted distinct names of the (training) csv, or ``"0" .. "N-1"`` when every
label there is an integer.

Sources without their own split send ``val_fraction`` of the videos (chosen by
an MD5 of the path relative to the root, so the split never changes when
videos are added) to `eval_split` and the rest to `train_split`.
"""
import csv
import hashlib
import os

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ogv")
_HEADER_NAMES = ("path", "video", "file", "filename")


def _split_path(cfg, split):
    return cfg.path.replace("{split}", split)


def _in_eval_split(relative_path, val_fraction):
    digest = hashlib.md5(relative_path.replace(os.sep, "/").encode()).hexdigest()
    return int(digest[:8], 16) / 2.0 ** 32 < val_fraction


def _hash_split(cfg, split, items, relative_to):
    """Keeps the `(path, label)` items that fall into `split` by the path hash."""
    if split not in (cfg.train_split, cfg.eval_split):
        raise ValueError(f"Split {split!r} does not exist here; this source has no splits of its "
                         f"own, so only data.train_split ({cfg.train_split!r}) and "
                         f"data.eval_split ({cfg.eval_split!r}) are defined.")
    want_eval = split == cfg.eval_split
    return [(p, l) for p, l in items
            if _in_eval_split(os.path.relpath(p, relative_to), cfg.val_fraction) == want_eval]


def _subdirs(folder):
    return sorted(d for d in os.listdir(folder)
                  if not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))


def _folder_class_root(cfg):
    root = cfg.path
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.path {root!r} is not a folder; expected the root of a "
                                "class-per-folder video tree.")
    train_root = os.path.join(root, cfg.train_split)
    return train_root if os.path.isdir(train_root) else root


def _class_videos(class_dir):
    """Every video file below `class_dir`, in any sub-folder, sorted; hidden entries skipped."""
    found = []
    for parent, dirs, names in os.walk(class_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(parent, name) for name in names
                     if not name.startswith(".") and name.lower().endswith(VIDEO_EXTENSIONS))
    return sorted(found)


def folder_class_names(cfg):
    """Sorted class folder names of a folder source.

    Raises:
        ValueError: no class folders, or a class folder holding no video.
    """
    class_root = _folder_class_root(cfg)
    names = _subdirs(class_root)
    if not names:
        raise ValueError(f"Folder {class_root!r} has no class sub-folders; expected "
                         "<root>/[<split>/]<class>/<video>.")
    empty = [name for name in names if not _class_videos(os.path.join(class_root, name))]
    if empty:
        raise ValueError(f"Class folder {os.path.join(class_root, empty[0])!r} holds no video "
                         f"files ({len(empty)} empty class folder(s): {empty[:5]}); add videos "
                         "or remove the folder.")
    return names


def list_folder(cfg, split):
    """`(paths, labels)` of one split of a folder source.

    Raises:
        FileNotFoundError: if the root folder does not exist.
        ValueError: if the split has a class folder that the training split lacks,
            or no videos at all.
    """
    names = folder_class_names(cfg)
    root = cfg.path
    split_root = os.path.join(root, split)
    has_split_folders = os.path.isdir(os.path.join(root, cfg.train_split))
    if has_split_folders and not os.path.isdir(split_root):
        raise FileNotFoundError(f"data.path {root!r} has split folders but no {split!r} folder.")
    base = split_root if has_split_folders else root
    index = {name: i for i, name in enumerate(names)}
    items = []
    for name in _subdirs(base):
        if name not in index:
            raise ValueError(f"Class folder {os.path.join(base, name)!r} is not among the "
                             f"training classes {names}.")
        items.extend((path, index[name]) for path in _class_videos(os.path.join(base, name))
                     if os.path.isfile(path))
    if not has_split_folders:
        items = _hash_split(cfg, split, items, root)
    if not items:
        raise ValueError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) found for split "
                         f"{split!r} under {base!r}.")
    return [p for p, _ in items], [l for _, l in items]


def _read_csv_rows(csv_path):
    """Rows `(path, label_text, split_or_None, line_number)` of a csv, header dropped."""
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"CSV file {csv_path!r} does not exist (data.path).")
    rows = []
    with open(csv_path, newline="") as f:
        for line_number, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if line_number == 1 and row[0].lower() in _HEADER_NAMES:
                continue
            if len(row) not in (2, 3):
                raise ValueError(f"{csv_path}:{line_number}: expected 'path,label[,split]', "
                                 f"got {len(row)} columns: {row}.")
            rows.append((row[0], row[1], row[2] if len(row) == 3 else None, line_number))
    if not rows:
        raise ValueError(f"CSV file {csv_path!r} has no rows.")
    return rows


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def csv_class_names(cfg):
    """Class names of a csv source (see the module docstring)."""
    rows = _read_csv_rows(_split_path(cfg, cfg.train_split))
    if any(split is not None for _, _, split, _ in rows):
        rows = [r for r in rows if r[2] == cfg.train_split] or rows
    names = sorted({label for _, label, _, _ in rows if not _is_int(label)})
    if not names:
        return [str(i) for i in range(cfg.num_classes)]
    return names


def list_csv(cfg, split):
    """`(paths, labels)` of one split of a csv source.

    Raises:
        FileNotFoundError: if the csv file does not exist.
        ValueError: on a malformed row, an unknown class name or an index out of
            range (naming file and line), or when no rows belong to the split.
    """
    csv_path = _split_path(cfg, split)
    rows = _read_csv_rows(csv_path)
    names = csv_class_names(cfg)
    index = {name: i for i, name in enumerate(names)}
    folder = os.path.dirname(os.path.abspath(csv_path))
    has_split_column = any(r[2] is not None for r in rows)
    items = []
    for path, label_text, row_split, line_number in rows:
        if has_split_column and row_split != split:
            continue
        if _is_int(label_text):
            label = int(label_text)
            if not 0 <= label < len(names):
                raise ValueError(f"{csv_path}:{line_number}: label {label} out of range; "
                                 f"expected 0..{len(names) - 1}.")
        elif label_text in index:
            label = index[label_text]
        else:
            raise ValueError(f"{csv_path}:{line_number}: unknown class {label_text!r}; "
                             f"expected one of {names} or an index.")
        items.append((os.path.join(folder, path), label))
    if not has_split_column and "{split}" not in cfg.path:
        items = _hash_split(cfg, split, items, folder)
    if not items:
        raise ValueError(f"CSV {csv_path!r} has no rows for split {split!r}.")
    return [p for p, _ in items], [l for _, l in items]
