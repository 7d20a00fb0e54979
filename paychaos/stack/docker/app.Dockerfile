# The project's own services in one image: payment API, gateway simulator,
# telemetry collector, fault proxy (the Toxiproxy stand-in) and Locust.
# The command picks the service, e.g. `python -m paychaos.stack.api --host 127.0.0.1 --port 8000 ...`.
#
# Build context: the repository root (the Docker backend sends only pyproject.toml,
# README.md, paychaos/, locustfiles/; with `docker compose build`
# add a .dockerignore for .venv and .paychaos).
#
# Layer order matters on the vfs storage driver (every step copies the whole
# file system of its parent): metadata first, the heavy install last, in one RUN.
ARG BASE_IMAGE=paychaos/base:bookworm
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
LABEL org.opencontainers.image.title="paychaos app" \
      org.opencontainers.image.source="stack/docker/app.Dockerfile"
WORKDIR /app
CMD ["python", "-m", "paychaos.stack.api", "--help"]
COPY pyproject.toml README.md /app/
COPY paychaos /app/paychaos
COPY locustfiles /app/locustfiles
# extra CA certificates for TLS-intercepting networks (see extra-ca/README.md);
# Python from Debian; the project and its dependencies from PyPI into a venv
RUN mkdir -p /usr/local/share/ca-certificates/paychaos \
    && cp /app/paychaos/stack/docker/extra-ca/*.crt /usr/local/share/ca-certificates/paychaos/ 2>/dev/null || true \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates procps \
    && rm -rf /var/lib/apt/lists/* \
    && update-ca-certificates >/dev/null \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --quiet /app \
    && useradd --system --no-create-home --shell /usr/sbin/nologin paychaos-pg \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +
