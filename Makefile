# recbuf — a Kubernetes operator for buffered record pipelines.
# `make help` lists the targets. Tools are pinned below and installed into ./bin.

# Image names used by docker-build, the chart and the e2e suite.
IMG_TAG ?= dev
MANAGER_IMG ?= recbuf/manager:$(IMG_TAG)
SIDECAR_IMG ?= recbuf/sidecar:$(IMG_TAG)
EDGESIM_IMG ?= recbuf/edgesim:$(IMG_TAG)
NATS_IMG ?= recbuf/nats:$(IMG_TAG)
# BASE_IMAGE is the runtime base of our images: scratch needs no registry;
# users may choose gcr.io/distroless/static:nonroot.
BASE_IMAGE ?= scratch

# Clusters used by `make demo` and `make test-e2e` (apart, so that running
# the e2e suite does not wipe a demo).
DEMO_CLUSTER ?= recbuf-demo
KIND_CLUSTER ?= recbuf-e2e
IMAGES := MANAGER_IMG=$(MANAGER_IMG) SIDECAR_IMG=$(SIDECAR_IMG) EDGESIM_IMG=$(EDGESIM_IMG) NATS_IMG=$(NATS_IMG) BASE_IMAGE=$(BASE_IMAGE)

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
GOBIN := $(CURDIR)/bin
export PATH := $(GOBIN):$(PATH)
# Only the Go module proxy is reachable on our build machines: never fall
# back to fetching modules from VCS hosts. (comma is defined first: `:=`
# expands at once.)
comma := ,
export GOPROXY := $(patsubst %$(comma)direct,%,$(shell go env GOPROXY))

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests from kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=recbuf-manager crd paths="./api/...;./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@$(MAKE) --no-print-directory chart-crds

.PHONY: generate
generate: controller-gen ## Generate deepcopy code from kubebuilder markers.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: chart-crds
chart-crds: ## Copy the generated CRDs and manager RBAC rules into the Helm chart.
	@mkdir -p charts/recbuf/crds charts/recbuf/files
	@cp config/crd/bases/*.yaml charts/recbuf/crds/
	@cp config/rbac/role.yaml charts/recbuf/files/manager-role.yaml

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files differ from what is checked in.
	@git diff --exit-code -- api config charts || { echo "generated files drifted: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "untracked generated files: commit them"; exit 1; }

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (includes gofmt and goimports checks).
	$(GOLANGCI_LINT) run ./...

.PHONY: lint-api
lint-api: kube-api-linter ## Run kube-api-linter on the API types (.golangci-kal.yml); not yet clean, see docs/api-conventions.md.
	$(KUBE_API_LINTER) run -c .golangci-kal.yml ./api/...

.PHONY: envtest
envtest: ## Build the kube-apiserver and etcd that envtest runs (cached in ./bin).
	@hack/envtest-assets.sh >/dev/null

.PHONY: test
test: helm ## Run all unit, NATS, envtest and chart tests with the race detector.
	KUBEBUILDER_ASSETS="$${KUBEBUILDER_ASSETS:-$$(hack/envtest-assets.sh)}" \
		go test -race -count=1 -timeout 20m $$(go list ./... | grep -v /test/e2e)

.PHONY: bench
bench: ## Run the benchmarks (see docs/benchmarks.md for how results are compared).
	go test -run '^$$' -bench . -benchmem -count 6 ./internal/buffer/ | tee bin/bench.txt

##@ Build

.PHONY: build
build: ## Build every command (manager, sidecar, edgesim, recbufctl, kubectl-recbuf) into ./bin.
	CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/...

.PHONY: plugin
plugin: ## Build the kubectl plugin into ./bin/kubectl-recbuf (put ./bin on your PATH, then `kubectl recbuf`).
	CGO_ENABLED=0 go build -trimpath -o bin/kubectl-recbuf ./cmd/kubectl-recbuf

.PHONY: plugin-release
plugin-release: ## Build kubectl-recbuf release binaries, archives, SHA256SUMS and a krew manifest into dist/ (VERSION, PLATFORMS).
	VERSION=$(or $(VERSION),$(IMG_TAG)) hack/plugin-release.sh

.PHONY: docker-build
docker-build: ## Build the images from host-compiled binaries (BASE_IMAGE=scratch by default).
	$(IMAGES) hack/docker-build.sh

##@ Deployment

# DEPLOY_MANIFESTS prints config/default with the images set: the manager's
# and the buffer processes' (its --buffer-image flag). kubectl's built-in
# kustomize has no `kustomize edit set image`, and an `images:` entry in a
# temporary kustomization would need MANAGER_IMG split into name and tag,
# which a registry port ("host:5000/manager") makes ambiguous; so sed sets
# the two lines, whatever tags config/ holds, and the result is checked so
# that a changed config/ fails here rather than deploying other images.
DEPLOY_MANIFESTS = manifests="$$(kubectl kustomize config/default | sed \
		-e 's|^\([[:space:]]*image:[[:space:]]*\)recbuf/manager:.*$$|\1$(MANAGER_IMG)|' \
		-e 's|^\([[:space:]]*- --buffer-image=\).*$$|\1$(SIDECAR_IMG)|')"; \
	lines="$$(sed 's/^[[:space:]]*//' <<<"$$manifests")"; \
	grep -qxF -- 'image: $(MANAGER_IMG)' <<<"$$lines" && grep -qxF -- '- --buffer-image=$(SIDECAR_IMG)' <<<"$$lines" || \
		{ echo "found no recbuf/manager image or --buffer-image flag to set in config/default" >&2; exit 1; }; \
	printf '%s\n' "$$manifests"

.PHONY: install
install: manifests ## Install the CRDs into the cluster in the current kubeconfig (server-side: the Record CRD is too large for a client-side apply's annotation).
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs from the cluster in the current kubeconfig (and with them every Record).
	kubectl delete -k config/crd --ignore-not-found

.PHONY: run
run: manifests generate ## Run the manager on this machine against the cluster in the current kubeconfig (make install first); ARGS are its flags, e.g. ARGS=--nats-url=nats://127.0.0.1:4222.
	go run ./cmd/manager --leader-elect=false --metrics-secure=false --metrics-bind-address=127.0.0.1:8443 --health-probe-bind-address=127.0.0.1:8081 $(ARGS)

.PHONY: deploy-manifests
deploy-manifests: ## Print what `make deploy` applies: config/default running MANAGER_IMG and SIDECAR_IMG.
	@$(DEPLOY_MANIFESTS)

.PHONY: deploy
deploy: ## Deploy the manager (MANAGER_IMG, buffer pods SIDECAR_IMG) with kustomize to the cluster in the current kubeconfig.
	@{ $(DEPLOY_MANIFESTS); } | kubectl apply -f -
	@# The report master key: made once with 32 random bytes, kept afterwards.
	@kubectl -n recbuf-system get secret recbuf-report-master-key >/dev/null 2>&1 || { \
		key="$$(mktemp)" && trap 'rm -f "$$key"' EXIT && head -c 32 /dev/urandom >"$$key" && \
		kubectl -n recbuf-system create secret generic recbuf-report-master-key --from-file=key="$$key"; }

.PHONY: undeploy
undeploy: ## Remove what `make deploy` created.
	kubectl delete -k config/default --ignore-not-found

.PHONY: demo
demo: helm ## Create a kind cluster with recbuf, NATS, the sample Records and a simulator.
	KIND_CLUSTER=$(DEMO_CLUSTER) $(IMAGES) hack/demo.sh up

.PHONY: demo-down
demo-down: ## Delete the demo cluster.
	KIND_CLUSTER=$(DEMO_CLUSTER) hack/demo.sh down

.PHONY: test-e2e
test-e2e: helm controller-gen ## Run the end-to-end suite on a kind cluster (created or reused).
	KIND_CLUSTER=$(KIND_CLUSTER) $(IMAGES) go test -tags e2e -count=1 -timeout 40m -v ./test/e2e/

# Chart checks (owner: packaging). test/chart also runs as part of `make test`.
.PHONY: helm-lint
helm-lint: helm ## Lint the Helm chart (strict).
	$(HELM) lint --strict --kube-version v1.34.4 charts/recbuf

.PHONY: test-chart
test-chart: helm ## Run the chart's template tests (schema, RBAC and CRDs in sync with config/).
	go test -count=1 ./test/chart/

##@ Tools

CONTROLLER_GEN ?= $(GOBIN)/controller-gen
GOLANGCI_LINT ?= $(GOBIN)/golangci-lint
HELM ?= $(GOBIN)/helm
BENCHSTAT ?= $(GOBIN)/benchstat
KUBE_API_LINTER ?= $(GOBIN)/golangci-lint-kube-api-linter

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v3.22.0
# helm built from source otherwise believes it talks to Kubernetes v1.20
# when no cluster is reachable (`helm template`, `helm lint`).
HELM_KUBE_MINOR ?= 34
HELM_LDFLAGS = -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR)"
BENCHSTAT_VERSION ?= v0.0.0-20260908200009-22c9c6c9d4da
# kube-api-linter publishes no releases: the pseudo-version of its main on the
# day it was pinned. Its command is golangci-lint with the linter built in.
KUBE_API_LINTER_VERSION ?= v0.0.0-20260716143926-092fe0c72997

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION) ## Install controller-gen.
$(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION):
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION) ## Install golangci-lint.
$(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION):
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: kube-api-linter
kube-api-linter: $(KUBE_API_LINTER)-$(KUBE_API_LINTER_VERSION) ## Install golangci-lint with kube-api-linter.
$(KUBE_API_LINTER)-$(KUBE_API_LINTER_VERSION):
	$(call go-install-tool,$(KUBE_API_LINTER),sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter,$(KUBE_API_LINTER_VERSION))

.PHONY: helm
helm: $(HELM)-$(HELM_VERSION) ## Install helm.
$(HELM)-$(HELM_VERSION):
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),$(HELM_LDFLAGS))

.PHONY: benchstat
benchstat: $(BENCHSTAT)-$(BENCHSTAT_VERSION) ## Install benchstat.
$(BENCHSTAT)-$(BENCHSTAT_VERSION):
	$(call go-install-tool,$(BENCHSTAT),golang.org/x/perf/cmd/benchstat,$(BENCHSTAT_VERSION))

# go-install-tool installs package $(2) at version $(3) as $(1), and leaves a
# versioned link $(1)-$(3) so that a version bump reinstalls it.
define go-install-tool
@[ -f "$(1)-$(3)" ] || { \
	set -e; \
	echo "Installing $(2)@$(3)"; \
	rm -f "$(1)"; \
	GOBIN="$(GOBIN)" go install $(4) "$(2)@$(3)"; \
	mv "$(1)" "$(1)-$(3)"; \
	ln -sf "$$(basename "$(1)-$(3)")" "$(1)"; \
}
endef
