# The two commands of the README:
#   make demo   install, train A0-stream on the builtin dataset, export TFLite, stream a video
#   make test   install everything the tests need, then run the whole test suite
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
RUN_DIR ?= runs/quickstart
# The suite runs on this many pytest-xdist workers (one per core of a 2-core CI machine);
# each module, and each folder with session fixtures, stays on one worker.
TEST_WORKERS ?= 2

.PHONY: install install-reference install-android demo test

install:
	$(PIP) install -q -e ".[test]"

-include Makefile.reference

install-android:
	bash android_demo/install_build_tools.sh

demo: install
	$(PYTHON) -m movinet_tf.quickstart --model_dir $(RUN_DIR)

test: install install-reference install-android
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadgroup
