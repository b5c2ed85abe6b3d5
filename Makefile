# Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-tensorflow test-jax bench clean

# The model's numerics run again on JAX: the layers, the golden parity of inference and training,
# the restricted path's attention, the compiled inference (shapes, bfloat16), and the tests whose
# work is in child processes that pick their own backend (marked jax_session: skipped in the
# TensorFlow session: several JAX devices and processes, two TensorFlow workers, train.py stopped
# and resumed, the paths without TensorFlow, the demo, the commands' TensorFlow start-up lines,
# the GPU session's smoke run), and XLA's FLOP count of the training steps.
# JAX's training steps are the training golden's: every loss and weight update against the
# original graph's. The rest is the same code on every backend, run once, on
# TensorFlow: command lines, files, reports, the loader's rules, the training loop and what is
# marked `once` (resuming and its files, construction).
JAX_TESTS := tests/test_layers.py tests/test_generator.py tests/test_losses.py \
	tests/test_training_golden.py tests/test_restricted.py tests/test_guided.py \
	tests/test_distributed.py tests/test_extras.py tests/test_backends.py \
	tests/test_commands.py::test_no_tensorflow_start_up_line_on_stderr tests/test_gpu_session.py \
	tests/test_training.py::test_step_flops_are_xlas_count_on_jax_and_unknown_elsewhere \
	tests/test_inference.py::test_original_mode_reproduces_output_png \
	tests/test_inference.py::test_original_mode_coffee_within_float32_noise \
	tests/test_inference.py::test_compiles_once_per_padded_shape \
	tests/test_inference.py::test_bfloat16_inference_is_close_to_float32

# Files that touch no Keras backend (masks, config, data lists, files, packaging, scripts): run in
# the JAX session, which ends minutes before the TensorFlow one, so that the two end together.
PLAIN_TESTS := tests/test_masks.py tests/test_config.py tests/test_data.py tests/test_files.py \
	tests/test_packaging.py tests/test_pack_images.py tests/test_make_edges.py \
	tests/test_training_state.py

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[tensorflow,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) test.py --image examples/input.png --mask examples/mask.png --output demo_output.png --overwrite --checkpoint_dir checkpoints/default

# The two sessions run side by side: on 2 cores that takes about 3/4 of running them one after
# the other (much of a test's time is one thread: process start-up, Python, small tensors).
# Each session's output is printed whole when it ends.
test: $(STAMP)
	$(MAKE) --no-print-directory -j2 --output-sync=target test-tensorflow test-jax

test-tensorflow: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q --durations=15 $(addprefix --ignore=,$(PLAIN_TESTS))

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q --durations=15 -m 'not full_width and not once' $(JAX_TESTS) $(PLAIN_TESTS)

bench: $(STAMP)
	$(PY) benchmarks/inference.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
