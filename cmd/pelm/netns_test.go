package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netns is a network namespace of the test's own, joined to the test's by
// a veth pair: a child started in it reaches the NATS server only over
// that link, which the test can cut and mend. Cutting sets the link down,
// so that both ends' packets are dropped without a word, as a failed
// switch or a firewall does: no reset, no error, just silence.
type netns struct {
	t              *testing.T
	name, hostLink string
	hostIP, nsIP   string
}

// newNetns makes the namespace, or skips the test where it cannot be made
// (not root, no iproute2).
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network partitions need root to make a network namespace (ip netns); not root here")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network partitions need iproute2's ip; not found")
	}
	b := rand.IntN(1 << 14)
	n := &netns{t: t,
		name:     fmt.Sprintf("pelmtest%05d", b),
		hostLink: fmt.Sprintf("pelm%05dh", b),
		hostIP:   fmt.Sprintf("10.213.%d.%d", b>>6, (b&63)*4+1),
		nsIP:     fmt.Sprintf("10.213.%d.%d", b>>6, (b&63)*4+2),
	}
	nsLink := fmt.Sprintf("pelm%05dn", b)
	if err := n.ip("netns", "add", n.name); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	t.Cleanup(func() { _ = n.ip("netns", "del", n.name) }) // deletes the pair too
	for _, args := range [][]string{
		{"link", "add", n.hostLink, "type", "veth", "peer", "name", nsLink},
		{"link", "set", nsLink, "netns", n.name},
		{"addr", "add", n.hostIP + "/30", "dev", n.hostLink},
		{"link", "set", n.hostLink, "up"},
		{"-n", n.name, "addr", "add", n.nsIP + "/30", "dev", nsLink},
		{"-n", n.name, "link", "set", nsLink, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if err := n.ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func (n *netns) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// command is name args... run inside the namespace. ip netns exec execs
// the command itself, so the process is the child's own (its pid, its
// signals).
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// cut drops every packet between the namespace and the test's.
func (n *netns) cut() {
	n.t.Helper()
	if err := n.ip("link", "set", n.hostLink, "down"); err != nil {
		n.t.Fatal(err)
	}
}

// mend lets packets through again.
func (n *netns) mend() {
	n.t.Helper()
	if err := n.ip("link", "set", n.hostLink, "up"); err != nil {
		n.t.Fatal(err)
	}
}
