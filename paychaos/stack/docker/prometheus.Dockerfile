# Prometheus (with promtool) and Alertmanager from Debian's packages; one image,
# two services: the command picks `prometheus` or `prometheus-alertmanager`.
ARG BASE_IMAGE=paychaos/base:bookworm
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="paychaos prometheus+alertmanager" \
      org.opencontainers.image.source="stack/docker/prometheus.Dockerfile"
CMD ["prometheus", "--version"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus prometheus-alertmanager \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /alertmanager /etc/paychaos
