# Stand-in for nats:2.15-alpine, made without a registry: nats-server of
# pelm's go.mod built static on the host (CGO_ENABLED=0), busybox from
# Debian's busybox-static for /bin/sh and wget (compose's healthcheck), and
# the official image's entrypoint, default configuration, ports and command.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY nats-server /usr/local/bin/nats-server
COPY nats-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY nats-server.conf /etc/nats/nats-server.conf
RUN ["/bin/mkdir", "-p", "/tmp"]
EXPOSE 4222 6222 8222
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["nats-server", "--config", "/etc/nats/nats-server.conf"]
