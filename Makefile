# mummi_tf — every target installs first when needed (a fresh machine needs only `make X`).
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

TASK     ?= walker_stand
GIN      ?= mummi
SEED     ?= 0
STEPS    ?=
BINDINGS ?=
empty   :=
space   := $(empty) $(empty)
LOGDIR   ?= logdir/$(TASK)/$(subst $(space),-,$(strip $(GIN)))/seed$(SEED)
OUT      ?=
GRID     ?= smoke
LINT_PATHS := mummi_tf tools tests bench docs/results/scripts
ARGS     ?=
# make test's pytest-xdist processes: alone, the suite keeps about one core busy.
WORKERS  ?= 2

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export TF_CPP_MIN_LOG_LEVEL ?= 3

TRAIN_ARGS = --task $(TASK) --logdir $(LOGDIR) --seed $(SEED) \
	$(foreach g,$(GIN),--gin_file $(g)) \
	$(if $(STEPS),--steps $(STEPS)) \
	$(foreach b,$(BINDINGS),--gin_binding '$(b)')

.PHONY: help install train eval export test lint bench plot toy sweep table1 clean

help:  ## list the targets
	@grep -E '^[a-z0-9_]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9_]+):[^#]*## /  make \1\t/'

install: $(STAMP)  ## Python deps from setup.cfg into .venv, plus MuJoCo's GL libraries

$(STAMP): setup.cfg pyproject.toml tools/install_system_deps.sh tools/install_robosuite.sh
	bash tools/install_system_deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	bash tools/install_robosuite.sh $(BIN)/python
	touch $@

train: install  ## make train TASK=walker_stand GIN="mummi quick" STEPS=... BINDINGS="a=1 b=2"
	$(BIN)/python -m mummi_tf.cli.train $(TRAIN_ARGS) $(ARGS)

# Set on the command line (or in the environment), not by the defaults above.
given = $(filter-out default file,$(origin $(1)))
EVAL_ARGS = --logdir $(LOGDIR) $(if $(call given,TASK),--task $(TASK)) \
	$(if $(call given,SEED),--seed $(SEED)) \
	$(if $(call given,GIN),$(foreach g,$(GIN),--gin_file $(g))) \
	$(foreach b,$(BINDINGS),--gin_binding '$(b)')

eval: install  ## make eval LOGDIR=...: the newest checkpoint at every missing rate (the run's own task and config)
	$(BIN)/python -m mummi_tf.cli.train $(EVAL_ARGS) --eval_only $(ARGS)

export: install  ## make export LOGDIR=... [OUT=...] [TFLITE=int8|float16|none] [FORCE=1]: the SavedModel (and policy.tflite, without MPC)
	$(BIN)/python -m mummi_tf.cli.export --logdir $(LOGDIR) $(if $(OUT),--out $(OUT)) \
	  $(if $(TFLITE),--no_mpc --tflite $(TFLITE)) $(if $(FORCE),--force) $(ARGS)

test: install  ## the test suite in WORKERS processes (make test ARGS="-k train" for a part, WORKERS=0 in this one)
	$(BIN)/python -m pytest tests -q -n $(WORKERS) --durations=20 $(ARGS)

lint: install  ## yapf (format, `make lint FIX=1` rewrites) and ruff (checks), configured in pyproject.toml
	$(BIN)/yapf $(if $(FIX),--in-place,--diff) --recursive --parallel $(LINT_PATHS)
	$(BIN)/ruff check $(if $(FIX),--fix) $(LINT_PATHS)

bench: install  ## writes bench/results.json and bench/results.md
	$(BIN)/python -m bench $(ARGS)

plot: install  ## make plot [LOGDIR=... | LOGDIRS="logdir/a logdir/b"] [UPSTREAM="..."] [REFERENCE="dreamerv3 drqv2"] OUT=curves.png (default: every run under logdir/)
	$(BIN)/python -m mummi_tf.cli.plot --logdirs $(or $(LOGDIRS),$(if $(call given,LOGDIR),$(LOGDIR),logdir)) \
	  $(if $(UPSTREAM),--upstream $(UPSTREAM)) $(if $(REFERENCE),--reference $(REFERENCE)) \
	  --out $(or $(OUT),curves.png) $(ARGS)

$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[ray]'
	touch $@

sweep: $(RAY_STAMP)  ## make sweep GRID=smoke|walker_stand_small|walker_stand_plain_small|walker_stand_ablations|table1|table2 OUT=DIR [BINDINGS=...] [ARGS="--gpus_per_run 1"]: runs on Ray, then OUT/table.md, OUT/curves.png
	$(BIN)/python -m mummi_tf.cli.sweep --grid $(GRID) --out $(or $(OUT),logdir/sweeps/$(GRID)) \
	  $(foreach b,$(BINDINGS),--gin_binding '$(b)') $(ARGS)

table1: install  ## make table1 RUNS=~/runs/table1-walker_stand [STUDY=table1|plain]: docs/results/STUDY/ (episodes CSV, tables, curves) and README's block
	$(BIN)/python -m mummi_tf.cli.table1 $(if $(RUNS),--runs $(RUNS)) --out docs/results/$(or $(STUDY),table1) --readme README.md $(ARGS)

toy: install  ## the toy 2-D world of Fig. 1/19/20 (≈ 11 min on a 2-core CPU: docs/evidence-tools.md)
	$(BIN)/python -m mummi_tf.cli.toy_latents --out $(or $(OUT),toy_results) $(ARGS)

clean:  ## remove .venv and build files (logdirs stay)
	rm -rf $(VENV) build *.egg-info .pytest_cache
