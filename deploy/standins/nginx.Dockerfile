# A stand-in for the official `nginx:1.27.5-alpine` image, for machines that
# cannot pull it: Debian's nginx (1.22 in bookworm) with what the gateway's
# Dockerfile, compose.yaml and deploy/k8s rely on from the official image:
#   - /docker-entrypoint.sh running /docker-entrypoint.d/*.sh when the
#     command is nginx, among them 20-envsubst-on-templates.sh, which renders
#     /etc/nginx/templates/*.template into NGINX_ENVSUBST_OUTPUT_DIR
#     (default /etc/nginx/conf.d) with only the variables that match
#     NGINX_ENVSUBST_FILTER;
#   - /etc/nginx/nginx.conf including conf.d/*.conf in its http block, and a
#     conf.d/default.conf (the gateway's Dockerfile removes it);
#   - the user nginx, uid and gid 101; logs to the container's stdout and
#     stderr; busybox-like `wget` for health checks; STOPSIGNAL SIGQUIT.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
# Whatever bookworm's archive has now (a stand-in, not a pinned release).
# hadolint ignore=DL3008
RUN groupadd --system --gid 101 nginx \
    && useradd --system --uid 101 --gid nginx --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin nginx \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx gettext-base wget \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/sites-available \
    && mkdir -p /docker-entrypoint.d /etc/nginx/conf.d \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY nginx/default.conf /etc/nginx/conf.d/default.conf
COPY nginx/docker-entrypoint.sh /docker-entrypoint.sh
COPY nginx/20-envsubst-on-templates.sh /docker-entrypoint.d/20-envsubst-on-templates.sh
EXPOSE 80
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
