// Package composetest runs the repository's docker-compose.yml as a user
// would, on a machine with a Docker engine and no image registry. Its test
// is behind the build tag compose, so that `go test ./...` does not start
// containers:
//
//	go test -tags compose -v -timeout 20m ./deploy/composetest
//
// .ci/compose-test runs it in CI after installing what it needs. Without a
// Docker engine that answers, the test skips and says so.
//
// What differs from a user's run is only where images come from: the test
// builds pelm:local from the repository's Dockerfile (docker-compose build)
// and, under the same names, stand-ins for the third-party images the
// compose file and the Dockerfile name (standin/*.Dockerfile):
//
//   - golang:1.26-bookworm: the host's Go toolchain and Debian's static
//     busybox on an empty image (not a Debian userland);
//   - nats:2.15-alpine: nats-server of go.mod, built static on the host, with
//     busybox for the shell and wget, and the official entrypoint;
//   - prom/prometheus:v3.5.0: Debian's prometheus package (2.42).
//
// An image of one of these names that the test did not build (no label
// dev.pelm.composetest.standin) is used as it is and never overwritten.
// grafana/grafana has no stand-in (Debian has no Grafana package): the test
// starts the monitoring profile's Prometheus only. The compose project is
// named pelmcomposetest (COMPOSE_PROJECT_NAME) so that a user's own project
// in the same checkout is left alone; it publishes the compose file's ports
// (4222, 8222, 8080, 9090), which must be free.
//
// The test is one sequence: build, up, requests through the nats CLI and the
// pelm client verbs, restart, docker kill, a crash, down and up, the bench
// profile, the monitoring profile's Prometheus, down -v; the memories stored
// at the start are compared after every step.
package composetest
