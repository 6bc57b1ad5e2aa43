# The commands of this project. Each is a script under scripts/, so it can
# also be read (and run) on its own. `make` alone lists them: every target
# with a `## target: text` line above it.

.PHONY: help run token test bench profile soak lint fmt docs docs-serve check-docs check-deploy check-k8s compose-test compose-up compose-down swarm-test clean

.DEFAULT_GOAL := help

## help: this list
help:
	@sed -n 's/^## \([a-z-]*\): \(.*\)/\1\t\2/p' $(MAKEFILE_LIST) | awk -F '\t' '{ printf "  make %-14s %s\n", $$1, $$2 }'

## run: the whole system without Docker (SQLite, local nginx), in the foreground
run:
	scripts/dev/run.sh

## token: an access token of the development client of the running system (make run, compose or the Kubernetes dev overlay), valid for 5 minutes; SCOPES="clients:read" for fewer scopes
token:
	@scripts/dev/dev-token.sh $(SCOPES)

## test: every test (installs nginx, starts a throwaway PostgreSQL)
test:
	scripts/ci/test.sh

## bench: requests per second, latency and CPU time per request through the gateway, against the architecture's limit
bench:
	scripts/perf/bench.sh

## profile: where the services' CPU goes for one bench target (PROFILE_TARGET=client|order|post): a flame graph under target/profile
profile:
	scripts/perf/profile.sh

## soak: a steady mix through the gateway for SOAK_SECONDS (default 600), a row per minute, then whether it stayed flat
soak:
	scripts/perf/soak.sh

## lint: formatting, clippy and the module layers, as CI runs them
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	scripts/ci/check-structure.py

## fmt: formats the Rust code
fmt:
	cargo fmt --all

## docs: the guide (docs/, an mdBook), built offline into target/book (installs mdbook when missing)
docs:
	scripts/docs/docs.sh build

## docs-serve: the guide on http://localhost:8090 (DOCS_PORT), rebuilt on every change
docs-serve:
	scripts/docs/docs.sh serve

## check-docs: the README's and the guide's links, names, includes and examples against the tree (no system started)
check-docs:
	scripts/docs/check-docs.py check

## check-deploy: compose file, Dockerfiles and gateway template, without Docker
check-deploy:
	scripts/deploy/check-deploy.sh

## compose-test: the containerised system built with the shipped Dockerfiles and run from compose.yaml, checked through the gateway
compose-test:
	scripts/deploy/compose-test.sh

## swarm-test: the system on Docker Swarm mode (a single-node swarm of compose-test's engine): rolling updates, a killed task, a rollback and scaling under load, with no failed request
swarm-test:
	scripts/deploy/swarm-test.sh

## compose-up: the containerised system left running on 127.0.0.1:GATEWAY_PORT, 8080 by default (stand-in base images; COMPOSE_STANDINS=0 COMPOSE_OFFLINE=0 for the official ones)
compose-up:
	scripts/deploy/compose-up.sh

## compose-down: removes compose-up's containers, networks and volumes
compose-down:
	scripts/deploy/compose-down.sh

## check-k8s: the Kubernetes manifests (deploy/k8s), rendered and checked, without a cluster
check-k8s:
	scripts/deploy/check-k8s.sh

## clean: removes cargo's target folder (the built guide too) and make run's logs
clean:
	cargo clean
	rm -rf .run
