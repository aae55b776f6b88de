#!/bin/sh
# The official nats:alpine entrypoint: arguments that start with a dash are
# nats-server's (compose's `command: ["-c", ...]`), anything else is run as is.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"
