# A stand-in for the official `prom/prometheus` image, for machines that
# cannot pull it: Debian's prometheus package (2.42 in bookworm), laid out
# as the official image is: entrypoint the prometheus binary, configuration
# at /etc/prometheus/prometheus.yml, data under /prometheus, user nobody.
# (Debian's build keeps its data in /var/lib/prometheus/metrics2 when
# --storage.tsdb.path is not given, as in compose.yaml: nobody owns that too.)
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
# Whatever bookworm's archive has now (a stand-in, not a pinned release).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /var/lib/prometheus \
    && chown -R nobody:nogroup /prometheus /var/lib/prometheus
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
