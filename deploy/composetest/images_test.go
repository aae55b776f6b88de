//go:build compose

package composetest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// standinLabel marks the images this test builds; an image of the same name
// without it is someone's real image and is used as it is.
const standinLabel = "dev.pelm.composetest.standin"

// tarCtx is a Docker build context, written as a tar stream to `docker build -`.
type tarCtx struct {
	buf bytes.Buffer
	tw  *tar.Writer
	err error
}

func newTarCtx() *tarCtx {
	c := &tarCtx{}
	c.tw = tar.NewWriter(&c.buf)
	return c
}

func (c *tarCtx) bytes(name string, mode int64, data []byte) {
	if c.err != nil {
		return
	}
	if c.err = c.tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); c.err == nil {
		_, c.err = c.tw.Write(data)
	}
}

func (c *tarCtx) dir(name string) {
	if c.err == nil {
		c.err = c.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: time.Unix(0, 0)})
	}
}

// file adds the host's file src (following symlinks) as name.
func (c *tarCtx) file(name, src string) {
	if c.err != nil {
		return
	}
	data, err := os.ReadFile(src)
	if err != nil {
		c.err = err
		return
	}
	st, err := os.Stat(src)
	if err != nil {
		c.err = err
		return
	}
	c.bytes(name, int64(st.Mode().Perm()), data)
}

// tree adds the host's directory src as name, without the paths skip says no to.
func (c *tarCtx) tree(name, src string, skip func(rel string, d fs.DirEntry) bool) {
	if c.err != nil {
		return
	}
	c.err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.ToSlash(filepath.Join(name, rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return c.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: target + "/", Mode: int64(info.Mode().Perm()), ModTime: info.ModTime()})
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return c.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: target, Linkname: link, ModTime: info.ModTime()})
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := c.tw.WriteHeader(&tar.Header{Name: target, Mode: int64(info.Mode().Perm()), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
			_, err = io.Copy(c.tw, f)
			return err
		}
		return nil
	})
}

// build runs `docker build -t tag -` on the context, unless tag is a real
// image (one this test did not build), which it leaves alone.
func (c *tarCtx) build(t *testing.T, tag, what string) {
	t.Helper()
	if c.err == nil {
		c.err = c.tw.Close()
	}
	if c.err != nil {
		t.Fatalf("build context of %s: %v", tag, c.err)
	}
	start := time.Now()
	cmd := exec.Command("docker", "build", "-q", "--label", standinLabel+"="+what, "-t", tag, "-")
	cmd.Stdin = &c.buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker build -t %s: %v\n%s", tag, err, out)
	}
	t.Logf("image %s: stand-in built in %s (%s): %s", tag, time.Since(start).Round(100*time.Millisecond), what, lastLine(string(out)))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// realImage reports whether tag names an image this test did not build.
func realImage(t *testing.T, tag string) bool {
	out, err := exec.Command("docker", "image", "inspect", "-f", "{{index .Config.Labels \""+standinLabel+"\"}}", tag).Output()
	if err != nil {
		return false // no such image
	}
	if strings.TrimSpace(string(out)) == "" {
		t.Logf("image %s: present and not a stand-in: used as it is", tag)
		return true
	}
	return false
}

func standinFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("standin", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildGolang makes the stand-in for the Dockerfile's build stage.
func buildGolang(t *testing.T, tag, busybox string) {
	if realImage(t, tag) {
		return
	}
	goroot := strings.TrimSpace(run(t, "", nil, "go", "env", "GOROOT"))
	version := strings.TrimSpace(run(t, "", nil, "go", "env", "GOVERSION"))
	c := newTarCtx()
	c.bytes("Dockerfile", 0o644, standinFile(t, "golang.Dockerfile"))
	c.file("busybox", busybox)
	c.file("ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt")
	// What `go build` needs of GOROOT; not its tests, API lists or docs.
	c.tree("go", goroot, func(rel string, d fs.DirEntry) bool {
		switch rel {
		case "test", "api", "doc", "misc":
			return true
		}
		return d.IsDir() && d.Name() == "testdata"
	})
	c.build(t, tag, "host "+version+" "+runtime.GOOS+"/"+runtime.GOARCH+" + busybox-static")
}

// buildNATS makes the stand-in for nats:<tag>-alpine from the nats-server
// of go.mod, built static on the host (bin, once built says so: "" or why not).
func buildNATS(t *testing.T, tag, busybox, repo, bin string, built <-chan string) {
	if realImage(t, tag) {
		return
	}
	version := strings.TrimSpace(run(t, repo, nil, "go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2"))
	want := strings.TrimSuffix(strings.TrimPrefix(tag, "nats:"), "-alpine")
	if !strings.HasPrefix(version, "v"+want+".") {
		t.Fatalf("go.mod has nats-server %s but docker-compose.yml runs %s: update one of them", version, tag)
	}
	if msg := <-built; msg != "" {
		t.Fatal(msg)
	}
	c := newTarCtx()
	c.bytes("Dockerfile", 0o644, standinFile(t, "nats.Dockerfile"))
	c.file("busybox", busybox)
	c.file("nats-server", bin)
	c.bytes("nats-entrypoint.sh", 0o755, standinFile(t, "nats-entrypoint.sh"))
	c.bytes("nats-server.conf", 0o644, standinFile(t, "nats-server.conf"))
	c.build(t, tag, "nats-server "+version+" (go.mod, CGO_ENABLED=0) + busybox-static")
}

// buildPrometheus makes the stand-in for prom/prometheus from Debian's
// package: its binaries, the libraries ldd names, its consoles and web files.
func buildPrometheus(t *testing.T, tag, prom string) {
	if realImage(t, tag) {
		return
	}
	version := lastLine(strings.SplitN(run(t, "", nil, prom, "--version"), "\n", 2)[0])
	c := newTarCtx()
	c.bytes("Dockerfile", 0o644, standinFile(t, "prometheus.Dockerfile"))
	c.dir("empty")
	c.dir("rootfs")
	c.file("rootfs/bin/prometheus", prom)
	if p, err := exec.LookPath("promtool"); err == nil {
		c.file("rootfs/bin/promtool", p)
	}
	for _, lib := range lddPaths(t, prom) {
		c.file("rootfs"+lib, lib)
	}
	// The official image's layout: a default configuration, the consoles.
	c.file("rootfs/etc/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml")
	for _, d := range []string{"/etc/prometheus/consoles", "/etc/prometheus/console_libraries", "/usr/share/prometheus"} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			c.tree("rootfs"+d, d, nil)
		}
	}
	c.bytes("rootfs/etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n"))
	c.bytes("rootfs/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/home:/sbin/nologin\n"))
	c.bytes("rootfs/etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\n"))
	c.build(t, tag, "Debian "+version)
}

// lddPaths lists the shared libraries and the loader a dynamic binary needs.
func lddPaths(t *testing.T, bin string) []string {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Logf("ldd %s: %v (taken for a static binary)", bin, err)
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				paths = append(paths, f)
			}
		}
	}
	return paths
}
