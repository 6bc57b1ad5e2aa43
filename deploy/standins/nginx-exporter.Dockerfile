# A stand-in for the official `nginx/nginx-prometheus-exporter` image, for
# machines that cannot pull it: Debian's prometheus-nginx-exporter package
# (0.11 in bookworm; it takes the same --nginx.scrape-uri flag and listens
# on the same port, 9113), run as nobody like the official image.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
# Whatever bookworm's archive has now (a stand-in, not a pinned release).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-nginx-exporter \
    && rm -rf /var/lib/apt/lists/*
USER 65534:65534
EXPOSE 9113
ENTRYPOINT ["/usr/bin/prometheus-nginx-exporter"]
