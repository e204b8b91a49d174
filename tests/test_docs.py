"""Runs the commands and snippets of the docs as a reader would paste them.

Every fenced block of README.md, docs/*.md and android_demo/README.md is one test case,
named by file and line (``README.md:193``):

- ``bash``/``sh`` blocks run in bash (``set -eo pipefail``), ``python`` blocks in a fresh
  interpreter, and ``console`` blocks run each ``$ `` line and check that the lines shown
  under it appear in what it printed (``...`` stands for any text; whitespace and line
  breaks are not compared).
- ``json`` and ``yaml`` blocks must parse (``json`` with ``...`` elisions removed); a
  ``json`` block marked ``matches PATH`` must agree with that file, as written by an earlier
  block.
- Blocks without a language and ``text`` blocks are output listings. One that looks like a
  command (``python ...``, ``make ...``, ``$ ...``) fails: it would escape this test.

The blocks of each doc file run, in their order, in a scratch folder of that file, which
holds ``tmp/``, ``clip.mp4`` (a small real video) and links to the repository's
``configs/``, ``export/``, ``benchmarks/``, ``tests/`` and Makefiles; ``/tmp/`` in a block
is rewritten to that ``tmp/``. Blocks run two at a time (`JOBS`). Python snippets get the names
listed in `docs_prelude` (``video``, ``frame``, ...). A block that names ``runs/tiny`` gets
the one tiny training run that all blocks share (``python -m movinet_tf.train --config tiny
--model_dir runs/tiny --mode train``, trained on first use).

A block is adapted by HTML comments on the lines just above its opening fence, which a
rendered page does not show:

    <!-- docs-test: skip REASON -->             not run here; REASON says why (Kinetics, a phone,
                                                 a 10-minute training). The block is still
                                                 checked statically: scripts, modules, flags,
                                                 configs, --set keys and make targets must
                                                 exist; python must compile. A program that is
                                                 not installed here must be named in REASON.
    <!-- docs-test: substitute OLD => NEW -->   replace text before running (OLD must occur)
    <!-- docs-test: after TEXT -->              first run the earlier block of this file that
                                                 contains TEXT (``after previous``: the block
                                                 just before); for files it writes
    <!-- docs-test: matches PATH -->            (json) the example agrees with the file PATH

An unknown marker, a stale substitution or an unknown block language fails the test: nothing
is skipped silently.

Cost: the running cases are marked slow (about 4 minutes on 2 idle cores); the static checks
take seconds.
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import types
from concurrent import futures

import pytest
import yaml

import docs_prelude

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_FILES = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md"))) + [
    "android_demo/README.md"]
# Linked into the scratch folder, so that relative paths in commands resolve.
LINKED = ["configs", "export", "benchmarks", "tests", "android_demo", "movinet_tf",
          "Makefile", "Makefile.reference", "setup.py"]
SHARED_RUN = "runs/tiny"
SHARED_RUN_COMMAND = ("python -m movinet_tf.train --config tiny --model_dir runs/tiny "
                      "--mode train")
BLOCK_TIMEOUT_S = 600
# Blocks run this many at a time (most of their time is one core starting TensorFlow).
JOBS = int(os.environ.get("DOCS_TEST_JOBS", min(2, os.cpu_count() or 1)))

# Markers for files this test does not own: (file, a piece of the block's text) -> markers.
# Commands that take minutes or run tests: a block holding one must say so with a skip marker
# (its static check still runs), rather than run here until the timeout.
LONG_COMMANDS = ("benchmarks/", "make demo", "make test", "movinet_tf.quickstart",
                 "movinet_tf.search", "movinet_tf.nas.compare", "-m pytest")

RUN_LANGS = {"bash", "sh", "python", "console"}
DATA_LANGS = {"json", "yaml"}
LISTING_LANGS = {"", "text"}
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
COMMAND_LIKE = re.compile(r"^\s*(\$ |python3? |make |bash |pip |adb |TF_\w+=)")


class Block:
    """One fenced block: where it is, its language, text and markers."""

    def __init__(self, path, line, lang, text, markers):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.skip = None
        self.substitutions = []
        self.after = []
        self.matches = None
        for marker in markers:
            verb, _, rest = marker.partition(" ")
            if verb == "skip" and rest:
                self.skip = rest
            elif verb == "substitute" and "=>" in rest:
                old, _, new = rest.partition("=>")
                self.substitutions.append((old.strip(), new.strip()))
            elif verb == "after" and rest:
                self.after.append(rest)
            elif verb == "matches" and rest:
                self.matches = rest
            else:
                raise ValueError(f"{self.id}: unknown docs-test marker {marker!r}")

    @property
    def id(self):
        return f"{self.path}:{self.line}"


def read_blocks(path):
    """The fenced blocks of one Markdown file, with their markers."""
    lines = open(os.path.join(REPO, path), encoding="utf-8").read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: unclosed code fence")
        markers, k = [], i - 1
        while k >= 0 and MARKER.match(lines[k]):
            markers.insert(0, MARKER.match(lines[k]).group(1))
            k -= 1
        indent = len(fence.group(1))
        text = "\n".join(line[indent:] for line in lines[i + 1:end]) + "\n"
        blocks.append(Block(path, i + 1, fence.group(2).lower(), text, markers))
        i = end + 1
    return blocks


ALL_BLOCKS = [block for path in DOC_FILES for block in read_blocks(path)]


def stray_markers(path):
    """docs-test markers not on the lines just above a fence (they would do nothing)."""
    lines = open(os.path.join(REPO, path), encoding="utf-8").read().split("\n")
    stray = []
    for i, line in enumerate(lines):
        if "docs-test:" in line:
            k = i
            while k < len(lines) and MARKER.match(lines[k]):
                k += 1
            if k == i or k == len(lines) or not FENCE.match(lines[k]):
                stray.append(f"{path}:{i + 1}")
    return stray


def _cases(predicate, slow):
    """One case per block that `predicate` selects; `slow(block)` says which are slow."""
    return [pytest.param(b, id=b.id, marks=[pytest.mark.slow] if slow(b) else [])
            for b in ALL_BLOCKS if predicate(b)]


def _runs(block):
    return block.lang in RUN_LANGS and not block.skip


# ----------------------------------------------------------------- the scratch folder


class Workspace:
    """The scratch folders, the shared tiny run and the jobs that run blocks.

    Each doc file runs in its own folder (``<root>/<file>/``), so that blocks of different
    files, which run at the same time, never write the same path. The shared run lives in
    ``<root>/shared/runs/tiny`` and is linked into each folder as ``runs/tiny``.
    """

    def __init__(self, root):
        self.root = str(root)
        self.shared = self._make_folder("shared")
        self.lock = threading.RLock()
        self.shared_run_lock = threading.Lock()
        self.pool = futures.ThreadPoolExecutor(max_workers=JOBS)
        self.jobs = {}
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [REPO, os.path.join(REPO, "tests")] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        self.env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def _make_folder(self, name):
        folder = os.path.join(self.root, name)
        os.makedirs(os.path.join(folder, "tmp"))
        for linked in LINKED:
            os.symlink(os.path.join(REPO, linked), os.path.join(folder, linked))
        docs_prelude.write_clip(os.path.join(folder, "clip.mp4"))
        return folder

    def folder(self, block):
        """The folder `block` runs in (made on first use)."""
        name = re.sub(r"\W", "_", block.path)
        folder = os.path.join(self.root, name)
        with self.lock:
            if not os.path.exists(folder):
                self._make_folder(name)
                os.makedirs(os.path.join(folder, "runs"))
                os.symlink(os.path.join(self.shared, SHARED_RUN), os.path.join(folder, SHARED_RUN))
        return folder

    def shell(self, script, cwd, timeout=BLOCK_TIMEOUT_S):
        return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def ensure_shared_run(self):
        with self.shared_run_lock:
            if os.path.exists(os.path.join(self.shared, SHARED_RUN, "checkpoint")):
                return
            done = self.shell(SHARED_RUN_COMMAND, self.shared)
            assert done.returncode == 0, f"the shared tiny run failed:\n{_tail(done)}"

    def prepare(self, block):
        """The block's text as run here: substitutions applied, /tmp/ moved into tmp/."""
        text = block.text
        for old, new in block.substitutions:
            assert old in text, f"{block.id}: substitution {old!r} no longer matches the block"
            text = text.replace(old, new)
        return text.replace("/tmp/", os.path.join(self.folder(block), "tmp") + "/")

    def start(self, blocks):
        """Starts `blocks` (and what they need) in the background, JOBS at a time."""
        for block in blocks:
            self._future(block)

    def run(self, block):
        """Runs `block` once per session, after the blocks it names; returns (ok, log)."""
        return self._future(block).result()

    def _future(self, block):
        # Dependencies are submitted before the block, so the oldest unfinished job is
        # always running and a job that waits for another never waits forever.
        with self.lock:
            if block.id not in self.jobs:
                needed = [(dep, self._future(dep)) for dep in _dependencies(block)]
                self.jobs[block.id] = self.pool.submit(self._run_after, block, needed)
            return self.jobs[block.id]

    def _run_after(self, block, needed):
        for dependency, job in needed:
            ok, _ = job.result()
            if not ok:
                return False, f"{dependency.id}, which this block needs, failed"
        if block.lang not in RUN_LANGS:
            return True, ""
        text = self.prepare(block)
        long = [command for command in LONG_COMMANDS if command in text]
        if long and block.lang != "python":
            return False, (f"{block.id} runs {long}, which take minutes or run tests: add "
                           "<!-- docs-test: skip REASON --> above it")
        if SHARED_RUN in text:
            self.ensure_shared_run()
        runner = {"python": self._run_python, "console": self._run_console}.get(
            block.lang, self._run_shell)
        return runner(block, text)

    def _run_shell(self, block, text):
        done = self.shell(text, self.folder(block))
        return done.returncode == 0, _tail(done)

    def _run_python(self, block, text):
        used = [name for name in docs_prelude.NAMES if re.search(rf"\b{name}\b", text)]
        header = "import docs_prelude\n" + "".join(
            f"{name} = docs_prelude.{name}()\n" for name in used)
        folder = self.folder(block)
        script = os.path.join(folder, "tmp", re.sub(r"\W", "_", block.id) + ".py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(header + text)
        done = subprocess.run([sys.executable, script], cwd=folder, env=self.env,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        return done.returncode == 0, _tail(done)

    def _run_console(self, block, text):
        problems = []
        for command, expected in _console_pairs(text):
            done = self.shell(command, self.folder(block))
            printed = done.stdout + done.stderr
            if not _shows(printed, expected):
                problems.append(f"$ {command}\nexpected:\n{expected}\nprinted:\n{_tail(done)}")
            elif "error:" in expected and done.returncode == 0:
                problems.append(f"$ {command}: shows an error but exited with status 0")
        return not problems, "\n".join(problems)


def _dependencies(block):
    earlier = [b for b in ALL_BLOCKS if b.path == block.path and b.line < block.line and _runs(b)]
    found = []
    for text in block.after:
        if text == "previous":
            candidates = earlier[-1:]
        else:
            candidates = [b for b in earlier if text in b.text][:1]
        assert candidates, f"{block.id}: 'after {text}' names no earlier runnable block"
        found += candidates
    return found


def _tail(done, limit=6000):
    out = (done.stdout or "") + (done.stderr or "")
    return f"exit status {done.returncode}\n" + out[-limit:]


def _console_pairs(text):
    """(command, expected output) for each ``$ `` line of a console block."""
    pairs = []
    for line in text.splitlines():
        if line.startswith("$ "):
            pairs.append([line[2:], []])
        elif pairs:
            pairs[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in pairs]


def _shows(printed, expected):
    """Whether `printed` contains `expected`, with ``...`` as a wildcard, whitespace-blind."""
    pattern = ".*".join(r"\s+".join(re.escape(w) for w in piece.split())
                        for piece in expected.split("..."))
    return re.search(pattern, " ".join(printed.split()), re.S) is not None


@pytest.fixture(scope="module")
def workspace(request, tmp_path_factory):
    """The scratch folder; it starts every selected block that runs, JOBS at a time."""
    space = Workspace(tmp_path_factory.mktemp("docs"))
    selected = [item.callspec.params["block"] for item in request.session.items
                if getattr(item, "originalname", None) in ("test_block_runs",
                                                             "test_listing_or_data_block")
                and "block" in getattr(item, "callspec", types.SimpleNamespace(params={})).params]
    space.start(b for b in selected if _runs(b) or b.matches)
    yield space
    space.pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------- static checks


def _logical_lines(block_id, text):
    """Joins backslash continuations; a comment before a continuation is an error."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            body = line[:-1]
            if not _open_quote(current + body) and (
                    shlex.split(current + body, comments=True) != shlex.split(current + body)):
                raise AssertionError(
                    f"{block_id}: {raw.strip()!r}: a '#' comment before a line continuation "
                    "swallows the backslash; pasted, the next line runs as its own command")
            current += body + " "
        else:
            current += line
            if _open_quote(current):
                current += "\n"
                continue
            if current.strip():
                lines.append(current)
            current = ""
    if current.strip():
        lines.append(current)
    return lines


def _open_quote(text):
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def _commands(block_id, text):
    """Each simple command of a shell block as a token list (control words removed)."""
    commands = []
    for line in _logical_lines(block_id, text):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current = []
        for token in list(lexer) + [";"]:
            if token in (";", "&", "&&", "|", "||", ";;"):
                if current:
                    commands.append(current)
                current = []
            elif not current and token in ("do", "then", "else", "time", "nice"):
                continue
            else:
                current.append(token)
    skipped = {"for", "done", "wait", "fi", "if", "cd", "export", "echo", "while", "-n"}
    result = []
    for tokens in commands:
        while tokens and re.match(r"^[A-Za-z_]\w*=", tokens[0]):
            tokens = tokens[1:]
        if tokens and tokens[0] not in skipped:
            result.append(tokens)
    return result


def _defined_flags(source_path):
    """Flag names a CLI defines: its own, those of `x.define_flags()` it calls, absl's."""
    text = open(source_path, encoding="utf-8").read()
    names = set(re.findall(r"DEFINE_\w+\(\s*[\"'](\w+)[\"']", text))
    names |= set(re.findall(r"add_argument\(\s*[\"']--(\w+)[\"']", text))
    for module in re.findall(r"\b(\w+)\.define\w*flags\(", text):
        for other in glob.glob(os.path.join(REPO, "**", module + ".py"), recursive=True):
            names |= set(re.findall(r"DEFINE_\w+\(\s*[\"'](\w+)[\"']", open(other).read()))
    if "define_verbose_flag" in text or "cli.run(" in text:
        names.add("verbose")
    return names | {"help", "helpfull", "helpshort", "flagfile"}


def _module_source(module):
    path = os.path.join(REPO, *module.split("."))
    for candidate in (path + ".py", os.path.join(path, "__main__.py")):
        if os.path.exists(candidate):
            return candidate
    return None


def _flag_items(tokens):
    """(name, value) of each --flag in tokens (value None for a bare boolean)."""
    items, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                value = tokens[i + 1]
                i += 1
            items.append((name, value if (eq or value) else None))
        i += 1
    return items


def _check_python_cli(block_id, source, tokens, problems):
    defined = _defined_flags(source)
    config, overrides = None, []
    for name, value in _flag_items(tokens):
        if name not in defined and not (name.startswith("no") and name[2:] in defined):
            problems.append(f"{block_id}: {os.path.relpath(source, REPO)} has no flag --{name}")
        if name == "config":
            config = value
        if name == "set" and value:
            overrides.append(value)
    trainer = os.path.basename(source) in ("train.py", "quickstart.py")
    if config and trainer and not config.startswith("runs/"):
        from movinet_tf import config as config_lib
        try:
            config_lib.load_config(config, overrides)
        except (ValueError, TypeError, OSError) as error:
            problems.append(f"{block_id}: --config {config} {' '.join(overrides)}: {error}")


def _check_command(block, tokens, problems):
    program, args = tokens[0], tokens[1:]
    if program.startswith("-"):
        problems.append(f"{block.id}: {' '.join(tokens)!r} starts with a flag (a broken line "
                        "continuation?)")
        return
    if program in ("python", "python3"):
        if args[:1] == ["-m"]:
            module = args[1]
            if module == "pytest":
                for path in args[2:]:
                    if not path.startswith("-") and not os.path.exists(
                            os.path.join(REPO, path.split("::")[0])):
                        problems.append(f"{block.id}: pytest path {path} does not exist")
                return
            source = _module_source(module)
            if source is None:
                problems.append(f"{block.id}: no module {module} in the repository")
                return
            _check_python_cli(block.id, source, args[2:], problems)
        else:
            source = os.path.join(REPO, args[0])
            if not os.path.exists(source):
                problems.append(f"{block.id}: no script {args[0]}")
                return
            _check_python_cli(block.id, source, args[1:], problems)
    elif program == "make":
        makefile, targets = "Makefile", []
        i = 0
        while i < len(args):
            if args[i] == "-f":
                makefile, i = args[i + 1], i + 2
                continue
            if not args[i].startswith("-") and "=" not in args[i]:
                targets.append(args[i])
            i += 1
        text = open(os.path.join(REPO, makefile)).read()
        for included in re.findall(r"^-?include\s+(\S+)", text, re.M):
            text += open(os.path.join(REPO, included)).read()
        for target in targets:
            if not re.search(rf"^{re.escape(target)}\s*:", text, re.M):
                problems.append(f"{block.id}: {makefile} has no target {target}")
    elif program == "bash":
        script = os.path.join(REPO, args[0])
        if not os.path.exists(script):
            problems.append(f"{block.id}: no script {args[0]}")
            return
        text = open(script).read()
        for arg in args[1:]:
            if arg.startswith("--") and arg.split("=")[0] not in text:
                problems.append(f"{block.id}: {args[0]} does not know {arg.split('=')[0]}")
    elif shutil.which(program) is None and program not in (block.skip or ""):
        problems.append(f"{block.id}: {program!r} is not installed here (if the reader needs "
                        "it from elsewhere, name it in the skip reason)")


def _static_problems(block):
    if block.lang == "python":
        try:
            compile(block.text, block.id, "exec")
        except SyntaxError as error:
            return [f"{block.id}: {error}"]
        return []
    problems = []
    text = block.text
    if block.lang == "console":
        # A transcript that shows an error is run by test_block_runs; its config may be wrong.
        text = "\n".join(command for command, shown in _console_pairs(text)
                         if "error:" not in shown)
    for tokens in _commands(block.id, text):
        _check_command(block, tokens, problems)
    return problems


@pytest.mark.parametrize("block", _cases(lambda b: b.lang in RUN_LANGS, slow=lambda b: False))
def test_block_is_well_formed(block):
    """Every command names scripts, modules, flags, configs and targets that exist."""
    problems = _static_problems(block)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("block", _cases(
    lambda b: b.lang not in RUN_LANGS, slow=lambda b: b.matches is not None))
def test_listing_or_data_block(block, request):
    """Output listings hold no commands; data parses and, if marked, matches a real file."""
    if block.lang in LISTING_LANGS:
        commands = [line for line in block.text.splitlines() if COMMAND_LIKE.match(line)]
        assert not commands, (f"{block.id}: a block without a language holds commands {commands}; "
                              "label it bash (or console) so that this test runs it")
        return
    assert block.lang in DATA_LANGS, (
        f"{block.id}: unknown block language {block.lang!r}: use one of "
        f"{sorted(RUN_LANGS | DATA_LANGS | LISTING_LANGS)}")
    if block.lang == "yaml":
        yaml.safe_load(block.text)
        return
    example = json.loads(re.sub(r",\s*\.\.\.", "", block.text))
    if block.matches:
        workspace = request.getfixturevalue("workspace")
        ok, log = workspace.run(block)
        assert ok, log
        path = workspace.prepare(Block(block.path, block.line, "", block.matches, []))
        with open(os.path.join(workspace.folder(block), path.strip()), encoding="utf-8") as f:
            actual = json.load(f)
        _assert_example_matches(example, actual, block.id)


def _assert_example_matches(example, actual, where):
    """Every key and value of the example is in the real file; lists may be cut short."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, the file has {actual!r}"
        missing = sorted(set(example) - set(actual))
        assert not missing, f"{where}: keys {missing} are not in the file"
        for key, value in example.items():
            _assert_example_matches(value, actual[key], f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list) and len(actual) >= len(example), (
            f"{where}: {example!r} is not a prefix of {actual!r}")
        for i, value in enumerate(example):
            _assert_example_matches(value, actual[i], f"{where}[{i}]")
    else:
        assert example == actual, f"{where}: the example says {example!r}, the file has {actual!r}"


def test_every_block_is_classified():
    """A block is run, marked skip with a reason, or a listing/data block; a doc has blocks."""
    assert len(ALL_BLOCKS) > 30
    for block in ALL_BLOCKS:
        known = RUN_LANGS | DATA_LANGS | LISTING_LANGS
        assert block.lang in known, f"{block.id}: unknown language {block.lang!r}"
    for path in DOC_FILES:
        assert any(b.path == path for b in ALL_BLOCKS), f"{path} has no fenced block"
    stray = [where for path in DOC_FILES for where in stray_markers(path)]
    assert not stray, f"docs-test markers not directly above a code fence: {stray}"


@pytest.mark.parametrize("block", _cases(_runs, slow=lambda b: True))
def test_block_runs(block, workspace):
    """The block runs as written (with its marked substitutions) and exits with status 0."""
    ok, log = workspace.run(block)
    assert ok, f"{block.id} failed as pasted:\n{block.text}\n{log}"


def test_the_static_checks_catch_the_mistakes_docs_have_had():
    """Blocks with the faults issue 17 found (and others) are reported, good ones are not."""
    def problems(lang, text, markers=()):
        return _static_problems(Block("docs/example.md", 1, lang, text, list(markers)))

    assert not problems("bash", "python -m movinet_tf.stream clip.mp4 --model m.tflite \\\n"
                                "    --plot probs.png\n")
    # The export.md fault: a comment after the backslash, so the next line runs on its own.
    assert any("starts with a flag" in p for p in problems(
        "bash", "python -m movinet_tf.stream clip.mp4 --model m \\   # or a model_dir\n"
                "    --plot probs.png\n"))
    with pytest.raises(AssertionError, match="comment before a line continuation"):
        problems("bash", "python -m movinet_tf.stream clip.mp4 --model m  # a model_dir \\\n"
                         "    --plot probs.png\n")
    assert problems("bash", "python export/export_tflite.py --no_such_flag 1\n")
    assert problems("bash", "python -m movinet_tf.train --config tiny --set train.stepz=3\n")
    assert problems("bash", "python -m movinet_tf.train --config no_such_config\n")
    assert problems("bash", "make no_such_target\n")
    assert problems("bash", "sudo make demo\n", ["skip a phone"]) == problems(
        "bash", "sudo make demo\n") != problems("bash", "sudo make demo\n", ["skip needs sudo"])
    assert problems("bash", "python export/export_tflite.py --quantize none|int8\n")
    assert problems("python", "import movinet_tf\nmodel = (\n")
    assert _shows("error: Unknown config key 'x'. Did you mean\n'y'? Valid keys: a, b, c.",
                  "error: Unknown config key 'x'. Did you mean 'y'? Valid keys: a, ...")
    assert not _shows("error: something else", "error: Unknown config key 'x'")
