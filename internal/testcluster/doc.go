// Package testcluster runs JetStream clusters of in-process nats-servers
// on loopback for tests: n nodes with fixed client and cluster ports, so
// that a node can be stopped and started again on the same ports and data
// directory, as a node of a real cluster that restarts.
//
// It is for tests only (it takes a testing.TB). Its methods are safe on
// one goroutine, the test's.
package testcluster
