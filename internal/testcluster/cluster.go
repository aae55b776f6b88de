package testcluster

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is n clustered nats-server processes with JetStream.
type Cluster struct {
	t     testing.TB
	bin   string
	nodes []*node
}

type node struct {
	name                   string
	port, cluster, monitor int
	conf                   string
	cmd                    *exec.Cmd // nil while the node is down
	done                   chan struct{}
	log                    *os.File
}

// Start runs n nodes and waits until JetStream has a meta leader that
// knows every peer as current (before that, an R3 stream may find too few
// servers to place it on). The nodes stop when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: serverBinary(t)}
	// Every node of a JetStream cluster must name its routes, so the ports
	// are chosen first: below Linux's ephemeral range (32768-60999), where
	// no other test's server is given one by the system meanwhile.
	ports := freePorts(t, 3*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	dir := t.TempDir()
	for i := range n {
		nd := &node{name: fmt.Sprintf("n%d", i+1), port: ports[i], cluster: ports[n+i], monitor: ports[2*n+i]}
		nd.conf = filepath.Join(dir, nd.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: pelm-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, nd.name, nd.port, nd.monitor, filepath.Join(dir, nd.name), nd.cluster, strings.Join(routes, ", "))
		if err := os.WriteFile(nd.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, nd.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		nd.log = log
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() {
		for i, nd := range c.nodes {
			c.Kill(i)
			_ = nd.log.Close()
		}
	})
	for i := range n {
		c.launch(i)
	}
	c.WaitReady(60 * time.Second)
	return c
}

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package → binary
)

// Binary builds the main package pkg (of this module or of a module it
// requires) once per test binary, and returns the program's path.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "pelm-test-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, programName(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// programName is what go build names pkg's program: its last element, or
// the one before a major version suffix (nats-server/v2 is nats-server).
func programName(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		return path.Base(path.Dir(pkg))
	}
	return base
}

// serverBinary is nats-server, from the module this repository requires.
func serverBinary(t testing.TB) string {
	return Binary(t, "github.com/nats-io/nats-server/v2")
}

func freePorts(t testing.TB, n int) []int {
	var ports []int
	seen := map[int]bool{}
	for len(ports) < n {
		p := 20000 + rand.IntN(10000)
		if seen[p] {
			continue
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			_ = l.Close()
			ports = append(ports, p)
			seen[p] = true
		}
	}
	return ports
}

// launch starts node i without waiting: a clustered JetStream server is
// ready only once its peers are there.
func (c *Cluster) launch(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = nd.log, nd.log
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.cmd, nd.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(nd.done)
}

// WaitReady waits until every running node takes connections and the
// meta leader sees every other node as current.
func (c *Cluster) WaitReady(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !c.metaCurrent() {
		if time.Now().After(deadline) {
			c.t.Fatalf("no JetStream meta leader with every peer current within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsz is what metaCurrent reads of a node's /jsz.
type jsz struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

func (c *Cluster) metaCurrent() bool {
	client := http.Client{Timeout: time.Second}
	for _, nd := range c.nodes {
		if nd.cmd == nil {
			return false
		}
		r, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.monitor))
		if err != nil {
			return false
		}
		_ = r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return false
		}
	}
	for _, nd := range c.nodes {
		r, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", nd.monitor))
		if err != nil {
			return false
		}
		var j jsz
		err = json.NewDecoder(r.Body).Decode(&j)
		_ = r.Body.Close()
		if err != nil || j.Meta == nil || j.Meta.Leader != nd.name {
			continue
		}
		if len(j.Meta.Replicas) != len(c.nodes)-1 {
			return false
		}
		for _, p := range j.Meta.Replicas {
			if !p.Current {
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
	for _, nd := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", nd.port))
	}
	return strings.Join(urls, ",")
}

// Index returns the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Stop shuts node i down as an operator does (SIGTERM: it closes its
// clients and routes and flushes its store) and waits until it has.
func (c *Cluster) Stop(i int) { c.signal(i, syscall.SIGTERM) }

// Kill kills node i (SIGKILL: what it had not written to disk is lost)
// and waits until it is gone.
func (c *Cluster) Kill(i int) { c.signal(i, syscall.SIGKILL) }

func (c *Cluster) signal(i int, sig syscall.Signal) {
	nd := c.nodes[i]
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Signal(sig)
	select {
	case <-nd.done:
	case <-time.After(30 * time.Second):
		_ = nd.cmd.Process.Kill()
		<-nd.done
	}
	nd.cmd = nil
}

// Restart starts node i again, on its ports and data directory, and waits
// until the cluster is whole.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.launch(i)
	c.WaitReady(60 * time.Second)
}
