# Stand-in for golang:1.26-bookworm, the Dockerfile's build stage, made
# without a registry: the host's Go toolchain (the version .ci/run tests
# with), busybox from Debian's busybox-static as /bin/sh and the usual tools,
# and the host's CA bundle. Not Debian, but what the build stage uses of the
# real image is there at the same paths: go on PATH, GOPATH=/go, /bin/sh,
# /etc/ssl/certs/ca-certificates.crt (copied into pelm's scratch image).
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY go /usr/local/go
ENV GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /tmp /go/src /go/bin /root && chmod 1777 /tmp /go
WORKDIR /go
