package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// servedPelm is `pelm serve` with its embedded NATS server, run as a child
// by a test.
type servedPelm struct {
	cmd    *exec.Cmd
	exited chan error
	url    string // where its embedded server listens
	logs   *lockedBuffer
}

// lockedBuffer keeps a child's output for the test to read while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// startServed runs `pelm serve` with an embedded server on a port the
// server picks (--nats-listen 127.0.0.1:-1: a port found free and then
// bound by the child could be taken meanwhile by another package's test
// server) and waits until its log says where it listens. env is added to
// the child's environment.
func startServed(t *testing.T, env []string, args ...string) *servedPelm {
	t.Helper()
	s := &servedPelm{logs: &lockedBuffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(pelmBinary(t), append([]string{"serve", "--nats-listen", "127.0.0.1:-1"}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = s.logs, io.MultiWriter(s.logs, pw)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); pw.Close() }()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Message, Listen string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "embedded nats server started" {
				urls <- line.Listen
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case s.url = <-urls:
	case err := <-s.exited:
		t.Fatalf("pelm serve ended before it listened: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("pelm serve did not say where it listens within 30s\n%s", s.logs)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	return s
}
