# A stand-in for the official `postgres:16-alpine` image, for machines that
# cannot pull it. It is PostgreSQL 15 (Debian bookworm's), not 16: a data
# volume made by one cannot be opened by the other. It honours what
# compose.yaml relies on from the official image:
#   - POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres),
#     POSTGRES_DB (default POSTGRES_USER), PGDATA
#     (default /var/lib/postgresql/data, a volume);
#   - on the first start with an empty PGDATA: initdb, then every
#     /docker-entrypoint-initdb.d/*.sh (run when executable, sourced
#     otherwise) and *.sql against a server on the Unix socket only;
#   - then `postgres` listening on every address, password logins
#     (scram-sha-256) from the network;
#   - pg_isready on PATH; runs as root (dropping to postgres) or as the
#     postgres user itself (compose's `user: postgres`); STOPSIGNAL SIGINT.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
# Whatever bookworm's archive has now (a stand-in, not a pinned release).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 3777 /var/run/postgresql \
    && chmod 1777 /var/lib/postgresql/data
COPY postgres/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
