# Container images of the Rust services, built from one Dockerfile.
#
#   build           compiles EVERY binary once (stage shared by the targets)
#   runtime         what the final images have in common: Debian slim, a
#                   non-root user, the defaults for running in a container
#   client_service  runtime + the client_service binary (listens on 8000)
#   order_service   runtime + the order_service binary  (listens on 8001)
#   auth_service    runtime + the auth_service binary   (listens on 8020)
#   console         runtime + the console binary        (listens on 8030)
#
# Build one of them by naming its target (compose.yaml does this for you):
#   docker build --target client_service -t client_service:local .
#   docker build --target order_service  -t order_service:local  .
# Every target starts from the same `build` stage, so BuildKit compiles the
# workspace once and the other images are assembled from its cache.
# (Without --target, `docker build .` builds the last stage: console.)
#
# BuildKit is required (the default builder of Docker Engine 23 and later,
# and of `docker compose`; DOCKER_BUILDKIT=1 with Engine 20.10) for the
# `RUN --mount=type=cache` lines below. There is no `# syntax=` line on
# purpose: the builder's own Dockerfile frontend (1.2 or later) reads this
# file, so building needs no frontend image from a registry.

# The Rust toolchain that compiles the services. The builder and the runtime
# are the same Debian release (bookworm), so the binaries link against the
# very glibc version they will find at run time.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
# The two base images, by default the official ones named by the versions
# above. `make compose-test` (scripts/deploy/compose-standins.sh) builds local
# stand-ins from Debian's packages and names them here, on a machine that
# reaches no image registry; nothing else in this file changes.
ARG RUST_IMAGE=rust:${RUST_VERSION}-${DEBIAN_RELEASE}
ARG RUNTIME_IMAGE=debian:${DEBIAN_RELEASE}-slim
# Where the crates come from: crates-io (the default: downloaded by cargo
# during the build) or vendored: the .cargo-vendor/ folder of the build
# context, made by `cargo vendor` (scripts/deploy/compose-lib.sh does, for a
# machine whose containers cannot reach crates.io; it is git-ignored).
ARG CARGO_SOURCE=crates-io

# --------------------------------------------------------------- source ----
FROM ${RUST_IMAGE} AS source-crates-io
WORKDIR /app

# The whole workspace (minus what .dockerignore leaves out): cargo needs the
# manifests of every member, tests/e2e included, to load the workspace.
COPY . .

# The same, with cargo told to take every crate from .cargo-vendor/ and
# never to go to the network (--locked below still checks Cargo.lock).
FROM source-crates-io AS source-vendored
ENV CARGO_NET_OFFLINE=true
RUN test -d /app/.cargo-vendor \
    || { echo 'CARGO_SOURCE=vendored needs .cargo-vendor/ (cargo vendor .cargo-vendor)' >&2; exit 1; } \
    && mkdir -p /app/.cargo \
    && printf '%s\n' '[source.crates-io]' 'replace-with = "vendored"' \
       '[source.vendored]' 'directory = "/app/.cargo-vendor"' >/app/.cargo/config.toml

# ---------------------------------------------------------------- build ----
# (One of the two stages above, by name: hadolint takes it for an image.)
# hadolint ignore=DL3006
FROM source-${CARGO_SOURCE} AS build

# Compile the four binaries in one cargo invocation.
# --locked        use exactly the versions in Cargo.lock (fail if stale)
# cache mounts    the crates.io download cache and the target directory are
#                 kept by BuildKit between builds, so a code change rebuilds
#                 only our crates, not the few hundred dependencies. Cache mounts
#                 are NOT part of the image, which is why the binaries are
#                 copied out of target/ into /out in the same RUN.
# sharing=locked  two builds at once (compose may build both targets in
#                 parallel) wait for each other instead of sharing target/.
# touch           our sources are made newer than anything in the cached
#                 target/: cargo decides what to rebuild by modification
#                 times, and `COPY . .` is cached by content, so a tree
#                 built before (say, main again after a branch) comes back
#                 with the times of its first build, older than the
#                 branch's artefacts, which cargo would then take as up to
#                 date (a build that fails, or a binary of other code).
#                 Our crates are rebuilt; the dependencies stay cached.
# The database migrations are embedded in the binaries at compile time
# (sqlx::migrate!), so the binaries are all the runtime images need.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/app/target,sharing=locked \
    find crates services tests -type f -exec touch {} + \
    && cargo build --release --locked --bin auth_service --bin client_service --bin order_service --bin console \
    && mkdir -p /out \
    && cp target/release/auth_service target/release/client_service target/release/order_service \
       target/release/console /out/

# -------------------------------------------------------------- runtime ----
# Shared by the four final images. No packages are installed: the binaries need
# only glibc (which the image has). Nothing here speaks TLS (the services
# talk plain HTTP to each other and to PostgreSQL inside the compose
# network), so ca-certificates is not needed either. (Should a TLS feature
# of reqwest or sqlx ever be enabled, add ca-certificates here.)
FROM ${RUNTIME_IMAGE} AS runtime

# A fixed, non-root uid/gid: files on volumes get a predictable owner and
# orchestrators can check "runAsNonRoot".
ARG APP_UID=10001
ARG APP_GID=10001

# The user that runs the service, and DATA_DIR owned by it. /data is used
# only when DATABASE_URL is unset (a SQLite file per service); with
# PostgreSQL, as in compose.yaml, nothing in the container is written.
# /run/secrets/{auth,client_service,order_service,console}: where
# compose.yaml mounts the volumes of the keys and secrets (Kubernetes mounts
# auth-service-keys at /run/secrets/auth). Docker gives a new volume the
# owner and mode of the folder it is first mounted on, so these make the
# volumes the app user's alone (0700), and compose's init_secrets, which
# runs as that user, can write the development set into them.
RUN groupadd --system --gid "${APP_GID}" app \
    && useradd --system --uid "${APP_UID}" --gid app \
       --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data /run/secrets/auth /run/secrets/client_service /run/secrets/order_service \
       /run/secrets/console \
    && chown app:app /data /run/secrets/auth /run/secrets/client_service /run/secrets/order_service \
       /run/secrets/console \
    && chmod 0700 /run/secrets/auth /run/secrets/client_service /run/secrets/order_service \
       /run/secrets/console

# Defaults for running in a container; compose.yaml (or `docker run -e`)
# can override each one.
#   LOG_FORMAT=json  one JSON object per log line, for log collectors
#   DATA_DIR=/data   where the SQLite file goes when DATABASE_URL is unset
#   RUST_LOG         (unset: the services' own default level applies)
ENV LOG_FORMAT=json \
    DATA_DIR=/data

WORKDIR /data
# Numeric, so that the runtime (and e.g. Kubernetes' runAsNonRoot) can tell
# the user is not root without looking inside the image's /etc/passwd.
USER ${APP_UID}:${APP_GID}

# ------------------------------------------------------- client_service ----
FROM runtime AS client_service
COPY --from=build /out/client_service /usr/local/bin/client_service
# 0.0.0.0: inside a container, 127.0.0.1 (the binary's own default) would be
# unreachable from the other containers.
ENV LISTEN_ADDR=0.0.0.0:8000
EXPOSE 8000
# Exec form: the binary is PID 1 and receives docker's SIGTERM directly; it
# handles SIGTERM itself (graceful shutdown), so no init process is needed.
CMD ["/usr/local/bin/client_service"]

# -------------------------------------------------------- order_service ----
FROM runtime AS order_service
COPY --from=build /out/order_service /usr/local/bin/order_service
ENV LISTEN_ADDR=0.0.0.0:8001
EXPOSE 8001
CMD ["/usr/local/bin/order_service"]

# --------------------------------------------------------- auth_service ----
# The token issuer. Its signing key and clients file are mounted (compose:
# a volume at /run/secrets/auth; Kubernetes: the Secret auth-service-keys);
# the image holds none. `auth_service init DIR` makes a development set:
# compose's init_secrets and the dev overlay's Job run it from this image.
FROM runtime AS auth_service
COPY --from=build /out/auth_service /usr/local/bin/auth_service
ENV LISTEN_ADDR=0.0.0.0:8020
EXPOSE 8020
CMD ["/usr/local/bin/auth_service"]

# -------------------------------------------------------------- console ----
# The web console at / (server-rendered pages, a confidential OAuth client
# of auth_service). Its client secret is mounted (compose: a volume at
# /run/secrets/console; Kubernetes: the Secret console-credentials).
FROM runtime AS console
COPY --from=build /out/console /usr/local/bin/console
ENV LISTEN_ADDR=0.0.0.0:8030
EXPOSE 8030
CMD ["/usr/local/bin/console"]
