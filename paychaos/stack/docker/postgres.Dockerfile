# PostgreSQL from Debian's own package (15 on bookworm), trust auth on loopback,
# listening on $PGPORT (default 5432) at $PGHOST_LISTEN (default 127.0.0.1).
ARG BASE_IMAGE=paychaos/base:bookworm
FROM ${BASE_IMAGE}
ENV PGDATA=/var/lib/postgresql/data PGPORT=5432 PGHOST_LISTEN=127.0.0.1
LABEL org.opencontainers.image.title="paychaos postgres" \
      org.opencontainers.image.source="stack/docker/postgres.Dockerfile"
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
COPY paychaos/stack/docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
