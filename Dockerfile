# syntax=docker/dockerfile:1
#
# pelm as a container: a static binary on a small non-root image.
#   docker build -t pelm .
#   docker run --rm -e NATS_URL=nats://nats.example:4222 -p 8080:8080 pelm
# docker-compose.yml beside this file runs it with a NATS server.

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=alpine:3.22

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/pelm ./cmd/pelm

# Alpine rather than distroless: its busybox wget lets docker-compose.yml
# probe /readyz (distroless has no shell and no HTTP client, and pelm has no
# health verb). Its CA bundle serves TLS connections to NATS.
FROM ${RUNTIME_IMAGE}
RUN addgroup -S -g 10001 pelm \
 && adduser -S -D -H -u 10001 -G pelm -h /data -s /sbin/nologin pelm \
 && mkdir -p /data \
 && chown pelm:pelm /data
COPY --from=build /out/pelm /pelm
USER 10001:10001
# The working directory is writable: the embedded NATS server's ./pelm-data
# (when no NATS_URL is given) and `pelm bench`'s bench.json and bench.png go here.
WORKDIR /data
# HTTP: /healthz, /readyz, /metrics (--http-listen, default :8080).
EXPOSE 8080
# pelm reads NATS_URL for --nats-url; without it `pelm serve` starts an
# embedded NATS server bound to the container's loopback.
ENTRYPOINT ["/pelm"]
CMD ["serve"]
