#!/bin/sh
# The stand-in's entrypoint: what the official nginx image's does, in short.
# When the command is nginx, run every executable /docker-entrypoint.d/*.sh
# (and source every *.envsh) in order; then exec the command.
set -e
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    for f in /docker-entrypoint.d/*; do
        [ -f "$f" ] || continue
        # shellcheck disable=SC1090
        case "$f" in
            *.envsh) [ -x "$f" ] && . "$f" ;;
            *.sh) [ -x "$f" ] && "$f" ;;
        esac
    done
    echo "$0: configuration complete; ready for start up"
fi
exec "$@"
