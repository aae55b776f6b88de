package testcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
)

// Cluster is n clustered nats-servers with JetStream.
type Cluster struct {
	t     testing.TB
	opts  []*server.Options
	nodes []*server.Server // nil while a node is stopped
}

// Start runs n nodes and waits until JetStream has a meta leader that
// knows every peer as current (before that, an R3 stream may find too few
// servers to place it on). The nodes stop when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	// Every node of a JetStream cluster must name its routes, so the ports
	// are chosen first: below Linux's ephemeral range (32768-60999), where
	// no other test's server is given one by the system meanwhile.
	clientPorts, clusterPorts := freePorts(t, n), freePorts(t, n)
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &Cluster{t: t, nodes: make([]*server.Server, n)}
	for i := range n {
		opts := natstest.DefaultTestOptions
		opts.Port, opts.JetStream, opts.StoreDir = clientPorts[i], true, t.TempDir()
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = "pelm-test", "127.0.0.1", clusterPorts[i]
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.opts = append(c.opts, &opts)
	}
	for i := range n {
		c.launch(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	c.WaitReady(30 * time.Second)
	return c
}

func freePorts(t testing.TB, n int) []int {
	var ports []int
	for len(ports) < n {
		p := 20000 + rand.IntN(10000)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			_ = l.Close()
			ports = append(ports, p)
		}
	}
	return ports
}

// launch starts node i without waiting: a clustered JetStream server is
// ready only once its peers are there.
func (c *Cluster) launch(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	c.nodes[i] = s
}

// WaitReady waits until every running node takes connections and the
// meta leader sees every other node as current.
func (c *Cluster) WaitReady(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for _, s := range c.nodes {
		if s != nil && !s.ReadyForConnections(time.Until(deadline)) {
			c.t.Fatalf("server %s not ready", s.Name())
		}
	}
	for !c.metaCurrent() {
		if time.Now().After(deadline) {
			c.t.Fatalf("no JetStream meta leader with every peer current within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) metaCurrent() bool {
	for _, s := range c.nodes {
		if s == nil || !s.JetStreamIsLeader() {
			continue
		}
		jsz, err := s.Jsz(nil)
		if err != nil || jsz.Meta == nil || len(jsz.Meta.Replicas) != len(c.nodes)-1 {
			return false
		}
		for _, r := range jsz.Meta.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	}
	return false
}

// URL lists every node's client URL, comma-separated, as --nats-url and
// nats.Connect take them.
func (c *Cluster) URL() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// Node returns node i, nil while it is stopped.
func (c *Cluster) Node(i int) *server.Server { return c.nodes[i] }

// Index returns the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// Stop shuts node i down and waits until it has.
func (c *Cluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// Restart starts node i again, on its ports and data directory, and waits
// until the cluster is whole.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.launch(i)
	c.WaitReady(60 * time.Second)
}
