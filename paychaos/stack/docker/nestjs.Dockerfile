# The seed's NestJS payment service (stack/nestjs), for `paychaos up --backend docker --app nestjs`.
# Node.js from Debian 13's packages (nodejs 20; Debian 12's Node.js 18 is too old for
# NestJS 11), on the local trixie base image (stack/docker/build-base.sh paychaos/base:trixie).
# The Node packages come from the npm registry (npm ci of package-lock.json), compiled
# with tsc here; npm and the dev packages are removed again in the same step.
#
# Build context: only package.json, package-lock.json, tsconfig.json and src/ of
# paychaos/stack/nestjs (never a host's node_modules or dist).
#
# The command is the service's own, e.g.
#   node dist/main.js --host 127.0.0.1 --port 8000 --database-url postgresql://... --gateway-url http://...
# with OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_SDK_DISABLED=true to turn tracing off) in the environment.
ARG BASE_IMAGE=paychaos/base:trixie
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="paychaos nestjs payment service" \
      org.opencontainers.image.source="stack/docker/nestjs.Dockerfile"
WORKDIR /app
CMD ["node", "dist/main.js", "--help"]
COPY paychaos/stack/docker/extra-ca /tmp/extra-ca
COPY paychaos/stack/nestjs/package.json paychaos/stack/nestjs/package-lock.json paychaos/stack/nestjs/tsconfig.json /app/
COPY paychaos/stack/nestjs/src /app/src
# extra CA certificates for TLS-intercepting networks (see extra-ca/README.md), trusted by
# apt and by node (NODE_EXTRA_CA_CERTS) for npm; one RUN, so that npm, its Debian
# dependencies and the dev packages never reach a layer (vfs copies every layer whole)
RUN mkdir -p /usr/local/share/ca-certificates/paychaos \
    && { cp /tmp/extra-ca/*.crt /usr/local/share/ca-certificates/paychaos/ 2>/dev/null || true; } \
    && rm -rf /tmp/extra-ca \
    && apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && update-ca-certificates >/dev/null \
    && export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
    && npm ci --no-audit --no-fund --loglevel=error --include=dev \
    && npm run --silent build \
    && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
    && apt-get purge -y npm \
    && apt-get autoremove -y --purge \
    && rm -rf /var/lib/apt/lists/* /root/.npm /tmp/* \
    && test -f dist/main.js
