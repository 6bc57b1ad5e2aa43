# A stand-in for the official `rust:1.95-bookworm` image, for machines that
# cannot pull it (scripts/deploy/compose-standins.sh builds it; see
# docs/src/deployment/docker.md#without-a-registry). Debian's packages (gcc, libc6-dev:
# the C compiler and linker that rustc and the cc crate call) on the Debian
# stand-in base, plus the build machine's own Rust toolchain (rustc, cargo
# and the standard library, without their documentation), copied in as the
# build context. Laid out as the official image: CARGO_HOME=/usr/local/cargo,
# which the Dockerfile's cache mounts name.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
# Whatever bookworm's archive has now (a stand-in, not a pinned release).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
