// Package testcluster runs JetStream clusters of nats-server processes on
// loopback for tests: n nodes with fixed client, cluster and monitoring
// ports, so that a node can be stopped (SIGTERM) or killed (SIGKILL) and
// started again on the same ports and data directory, as a node of a real
// cluster that restarts or crashes.
//
// The nats-server binary is built once per test binary from the module
// this repository requires (go build), so the test runs the release it
// ships with and needs nothing installed; Binary builds any main package
// so (the fault tests build pelm with it).
//
// It is for tests only (it takes a testing.TB). Its methods are safe on
// one goroutine, the test's.
package testcluster
