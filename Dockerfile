# pelm as a container: one static binary on an empty (scratch) image, non-root.
#   docker build -t pelm .
#   docker run --rm -e NATS_URL=nats://nats.example:4222 -p 8080:8080 pelm
# docker-compose.yml beside this file runs it with a NATS server.
# Plain Dockerfile syntax (no `# syntax=` line): the classic builder and
# BuildKit build it alike, and BuildKit fetches no frontend image for it.

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/pelm ./cmd/pelm
# What the empty image needs besides the binary: a working directory that user
# 10001 owns and a /tmp.
RUN mkdir -p /out/data /out/tmp && chmod 1777 /out/tmp

# scratch: nothing but pelm, the CA bundle (TLS connections to NATS) and two
# directories. The healthcheck is `pelm health` (a GET of /readyz), so no shell
# or wget is needed; `docker compose exec pelm /pelm ...` runs the client verbs.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tmp /tmp
# Owned by 10001, so that a named volume mounted here (compose's bench-out)
# starts out writable by pelm.
COPY --from=build --chown=10001:10001 /out/data /data
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
