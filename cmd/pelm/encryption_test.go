package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pelm-dev/pelm/client"
)

// TestEncryptionAtRest stores an item with a known id, meta and vector
// through `pelm serve` with its embedded server encrypting the store, stops
// it, and looks for each of them in every file under the data directory:
// none may be there (and without a key, all are: the control). Restarted
// with the key, the item is back; with a wrong key, serve fails at start
// with a clear error and changes no file.
func TestEncryptionAtRest(t *testing.T) {
	const id, meta = "needle-id-7431", "needle-meta-9923"
	vec := []float32{1234.5678, -8765.4321, 3.14159265, 2718.28}
	var vecBytes []byte
	for _, x := range vec {
		vecBytes = binary.LittleEndian.AppendUint32(vecBytes, math.Float32bits(x))
	}
	needles := map[string][]byte{"id": []byte(id), "meta": []byte(meta), "vector": vecBytes}

	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("a-test-key-of-some-length-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongKey, []byte("another-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, encrypted := range []bool{false, true} {
		t.Run("encrypted="+strconv.FormatBool(encrypted), func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--data-dir", dir, "--dim", "4", "--http-listen", ""}
			if encrypted {
				args = append(args, "--nats-encryption-key-file", keyFile)
			}
			stop := func(s *servedPelm) {
				_ = s.cmd.Process.Signal(syscall.SIGTERM)
				<-s.exited
			}
			srv := startServed(t, nil, args...)
			c, closeAll := testClient(t, srv.url)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := c.Store(ctx, "vault", client.StoreRequest{ID: id, Vector: vec, Phase: 0.5, Meta: meta}); err != nil {
				t.Fatalf("store: %v\n%s", err, srv.logs)
			}
			closeAll()
			stop(srv)

			found := findInTree(t, dir, needles)
			if encrypted && len(found) > 0 {
				t.Fatalf("the encrypted store shows the item's %v in plain bytes", found)
			}
			if !encrypted && len(found) != len(needles) {
				t.Fatalf("control: the plain store shows only %v of the item", found)
			}
			if !encrypted {
				return
			}
			if bytes.Contains(srv.logs.Bytes(), []byte("a-test-key")) {
				t.Error("the key appears in the log")
			}

			// A wrong key: a clear error at start, and not one file changed.
			before := hashTree(t, dir)
			bad := append([]string{"serve", "--nats-listen", "127.0.0.1:-1"}, args[:len(args)-1]...)
			out, err := exec.Command(pelmBinary(t), append(bad, wrongKey)...).CombinedOutput()
			if err == nil || !bytes.Contains(out, []byte("another encryption key")) {
				t.Fatalf("serve with a wrong key: %v\n%s", err, out)
			}
			if after := hashTree(t, dir); after != before {
				t.Error("serve with a wrong key changed the data directory")
			}

			// The right key again: the item is back.
			srv = startServed(t, nil, args...)
			defer stop(srv)
			c, closeAll = testClient(t, srv.url)
			defer closeAll()
			res, err := c.Retrieve(ctx, "vault", client.RetrieveRequest{Vector: vec, Phase: 0.5})
			if err != nil || len(res.Matches) != 1 || res.Matches[0].ID != id {
				t.Fatalf("after a restart with the key: %v %+v\n%s", err, res, srv.logs)
			}
		})
	}
}

// testClient connects a client to a pelm serve's embedded server at url.
func testClient(t *testing.T, url string) (*client.Client, func()) {
	t.Helper()
	nc := connectRetry(t, url)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() { _ = c.Close(); nc.Close() }
}

// findInTree names the needles that some file under dir contains.
func findInTree(t *testing.T, dir string, needles map[string][]byte) []string {
	t.Helper()
	seen := map[string]bool{}
	eachFile(t, dir, func(_ string, b []byte) {
		for name, n := range needles {
			if bytes.Contains(b, n) {
				seen[name] = true
			}
		}
	})
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	return out
}

// hashTree is a digest of every file's path and bytes under dir.
func hashTree(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	eachFile(t, dir, func(p string, b []byte) {
		h.Write([]byte(p))
		h.Write(b)
	})
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// eachFile calls fn with the path and bytes of every file under dir, in
// lexical order.
func eachFile(t *testing.T, dir string, fn func(path string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fn(p, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
