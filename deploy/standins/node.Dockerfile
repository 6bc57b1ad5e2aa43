# A stand-in for the official `node:20.19-bookworm-slim` image (the gateway's
# docs stage), for machines that cannot pull it: Debian's nodejs and npm
# (Node.js 18, npm 9; the docs stage only runs `npm ci` and copies files).
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
# Whatever bookworm's archive has now (a stand-in, not a pinned release).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
CMD ["node"]
