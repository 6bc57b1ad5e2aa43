#!/usr/bin/env bash
# scripts/k8s-secrets.sh [DIR]: creates (or replaces) the Secrets the
# Kubernetes manifests expect, in the namespace rest-microservices, from the
# files scripts/make-secrets.sh made in DIR (default secrets/):
#
#   auth-service-keys            auth-signing-key.pem, auth-clients (mounted by auth-service)
#   client-service-credentials   SERVICE_CLIENT_SECRET of client_service
#   order-service-credentials    SERVICE_CLIENT_SECRET of order_service
#
# Run it once at setup, before or after `kubectl apply -k` (pods wait for
# their Secrets). Nothing of it is in the repository. KUBECTL overrides the
# kubectl to use; NAMESPACE the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-secrets}"
kubectl="${KUBECTL:-kubectl}"
namespace="${NAMESPACE:-rest-microservices}"
for file in auth-signing-key.pem auth-clients client_service.secret order_service.secret; do
    [[ -f "$dir/$file" ]] || {
        echo "k8s-secrets: no $dir/$file: run scripts/make-secrets.sh first" >&2
        exit 1
    }
done
apply() { "$kubectl" apply -f -; }
"$kubectl" create namespace "$namespace" --dry-run=client -o yaml | apply
"$kubectl" -n "$namespace" create secret generic auth-service-keys \
    --from-file=auth-signing-key.pem="$dir/auth-signing-key.pem" \
    --from-file=auth-clients="$dir/auth-clients" --dry-run=client -o yaml | apply
for service in client_service order_service; do
    "$kubectl" -n "$namespace" create secret generic "${service//_/-}-credentials" \
        --from-file=SERVICE_CLIENT_SECRET="$dir/$service.secret" --dry-run=client -o yaml | apply
done
echo "k8s-secrets: the Secrets are in $namespace; your client: source $dir/dev-clients.env"
