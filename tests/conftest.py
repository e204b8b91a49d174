import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))


# Under pytest-xdist (`make test` runs `pytest -n 2 --dist loadgroup`), the tests of one
# module run on one worker, so module fixtures are built once; the folders whose conftest
# builds session fixtures (a trained run, an APK, exported models) stay whole on one worker.
_WHOLE_FOLDERS = ("android", "cli", "export_lib")


def pytest_collection_modifyitems(config, items):
    tests_root = os.path.dirname(__file__)
    for item in items:
        relative = os.path.relpath(str(item.path), tests_root)
        top = relative.split(os.sep)[0]
        group = top if top in _WHOLE_FOLDERS else relative
        item.add_marker(pytest.mark.xdist_group(group))
