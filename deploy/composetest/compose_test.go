//go:build compose

package composetest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"time"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/wire"
)

const (
	project  = "pelmcomposetest" // COMPOSE_PROJECT_NAME: leaves a user's own project alone
	natsURL  = "nats://127.0.0.1:4222"
	dim      = 384 // pelm serve's default --dim, which docker-compose.yml keeps
	nCompose = 10  // items stored with the pelm client verbs
	nNotes   = 3   // items stored with the nats CLI
)

// The images docker-compose.yml and the Dockerfile name.
const (
	imgGolang     = "golang:1.26-bookworm"
	imgNATS       = "nats:2.15-alpine"
	imgPrometheus = "prom/prometheus:v3.5.0"
	imgPelm       = "pelm:local"
)

type item struct {
	id  string
	vec []float64
}

// stack is one compose project under test and what the test stored in it.
type stack struct {
	repo    string
	compose []string // docker-compose, or docker compose
	pelm    string   // the pelm binary, built on the host
	nats    string   // the nats CLI, built on the host
	compMem []item   // memory "compose", stored with pelm store
	notes   []item   // memory "notes", stored with nats pub -J
	goMem   []item   // memory "goclient", made and stored with the typed Go client
}

func TestCompose(t *testing.T) {
	begin := time.Now()
	if out, err := exec.Command("docker", "version", "-f", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Skipf("SKIP: no Docker engine answers (docker version: %v: %s); this test needs one", err, strings.TrimSpace(string(out)))
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{repo: repo, compose: composeCommand(t)}
	busybox := staticBusybox(t)
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("no prometheus on PATH: the stand-in for prom/prometheus is Debian's (apt-get install --no-install-recommends prometheus)")
	}
	work := t.TempDir()
	t.Logf("docker engine %s, %s", strings.TrimSpace(run(t, "", nil, "docker", "version", "-f", "{{.Server.Version}}")),
		strings.TrimSpace(firstLine(run(t, "", nil, s.compose[0], append(s.compose[1:], "version")...))))

	// The host's binaries compile while the images build.
	s.pelm, s.nats = filepath.Join(work, "pelm"), filepath.Join(work, "nats")
	natsServer := filepath.Join(work, "nats-server")
	natsBuilt, hostTools := make(chan string, 1), make(chan string, 1)
	go func() { hostTools <- s.buildHostTools(work, natsServer, natsBuilt) }()
	defer func() { <-hostTools }() // never leave the go commands running
	ok := t.Run("01 stand-in images", func(t *testing.T) {
		buildGolang(t, imgGolang, busybox)
		buildPrometheus(t, imgPrometheus, prom)
		buildNATS(t, imgNATS, busybox, repo, natsServer, natsBuilt)
	})
	if !ok {
		t.FailNow()
	}

	// Leftovers of an interrupted run, then the same at the end.
	s.composeRun(t, false, "--profile", "bench", "--profile", "monitoring", "down", "-v", "--remove-orphans")
	portsFree(t)
	t.Cleanup(func() {
		if t.Failed() {
			out, _, _ := s.composeTry("--profile", "monitoring", "logs", "--no-color", "--tail", "60")
			t.Logf("docker-compose logs (tail):\n%s", out)
		}
		s.composeRun(t, false, "--profile", "bench", "--profile", "monitoring", "down", "-v", "--remove-orphans")
	})

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"02 build pelm image", s.stepBuild},
		{"03 up and healthy", s.stepUp},
		{"04 host binaries: pelm, nats CLI", func(t *testing.T) {
			msg := <-hostTools
			hostTools <- msg // for the deferred receive
			if !strings.HasPrefix(msg, "ok ") {
				t.Fatal(msg)
			}
			t.Log(msg)
		}},
		{"05 nats CLI as deploy/README.md", s.stepNATSCLI},
		{"06 pelm client verbs", s.stepVerbs},
		{"07 typed Go client", s.stepGoClient},
		{"08 restart pelm", s.stepRestart},
		{"09 docker-compose kill -s KILL pelm", s.stepKill},
		{"10 pelm process crashes", s.stepCrash},
		{"11 down then up", s.stepDownUp},
		{"12 bench profile", s.stepBench},
		{"13 monitoring profile: prometheus", s.stepMonitoring},
		{"14 down -v empties", s.stepDownVolumes},
	}
	for _, st := range steps {
		start := time.Now()
		ok := t.Run(st.name, st.fn)
		t.Logf("step %q: %s in %s", st.name, map[bool]string{true: "ok", false: "FAILED"}[ok], time.Since(start).Round(100*time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}
	t.Logf("the whole compose test took %s", time.Since(begin).Round(time.Second))
}

// buildHostTools builds, static, nats-server of go.mod (for the nats image;
// natsBuilt then gets "" or what failed), the pelm binary (for its client
// verbs) and the nats CLI; it returns "ok ..." or what failed. The two
// builds in pelm's module share their compiled packages.
func (s *stack) buildHostTools(work, natsServer string, natsBuilt chan<- string) string {
	start := time.Now()
	for i, c := range []struct {
		dir string
		env []string
		cmd []string
	}{
		{s.repo, []string{"CGO_ENABLED=0"}, []string{"go", "build", "-ldflags=-s -w", "-o", natsServer, "github.com/nats-io/nats-server/v2"}},
		{s.repo, []string{"CGO_ENABLED=0"}, []string{"go", "build", "-o", s.pelm, "./cmd/pelm"}},
		// natscli outside pelm's module: it is not a dependency of pelm.
		{work, []string{"GOBIN=" + work, "GOFLAGS=", "GOWORK=off"}, []string{"go", "install", "github.com/nats-io/natscli/nats@v0.5.0"}},
		{"", nil, []string{s.nats, "--version"}},
	} {
		cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
		cmd.Dir, cmd.Env = c.dir, append(os.Environ(), c.env...)
		out, err := cmd.CombinedOutput()
		msg := ""
		if err != nil {
			msg = fmt.Sprintf("%s: %v\n%s", strings.Join(c.cmd, " "), err, out)
		}
		if i == 0 {
			natsBuilt <- msg
		}
		if msg != "" {
			if i > 0 {
				return msg
			}
			return "nats-server: " + msg
		}
	}
	return fmt.Sprintf("ok host binaries pelm and nats (natscli v0.5.0) built (and nats-server) in %s", time.Since(start).Round(time.Second))
}

func (s *stack) stepBuild(t *testing.T) {
	start := time.Now()
	// As `docker compose up` does on a first run; explicit, so that a
	// pelm:local left by an earlier run is never what is tested.
	out := s.composeRun(t, true, "build", "pelm")
	t.Logf("docker-compose build pelm (%s), last lines:\n%s", time.Since(start).Round(time.Second), tail(out, 4))
	user := strings.TrimSpace(run(t, "", nil, "docker", "image", "inspect", "-f", "{{.Config.User}} {{.Size}}", imgPelm))
	t.Logf("image %s: user and size in bytes: %s", imgPelm, user)
	if !strings.HasPrefix(user, "10001:10001 ") {
		t.Errorf("pelm's image runs as %q, want 10001:10001", user)
	}
	run(t, "", nil, "docker", "run", "--rm", imgPelm, "health", "-h") // the verb the healthcheck runs is there
}

func (s *stack) stepUp(t *testing.T) {
	s.composeRun(t, true, "up", "-d")
	s.waitHealthy(t, "nats", "pelm")
	t.Logf("docker-compose ps:\n%s", s.composeRun(t, true, "ps"))
	top := run(t, "", nil, "docker", "top", s.id(t, "pelm"), "-o", "uid,pid,args")
	t.Logf("docker top pelm:\n%s", top)
	if !strings.Contains(top, "10001") {
		t.Errorf("pelm does not run as uid 10001")
	}
}

// stepNATSCLI publishes as deploy/README.md shows, and reads the results
// with `nats sub`.
func (s *stack) stepNATSCLI(t *testing.T) {
	sub := s.natsSub(t, "pelm.res.notes.>")
	defer sub.stop()

	// The README's command as it stands: pelm runs with --dim 384 (the
	// README says to set PELM_DIM=3 first), so this is a bad_dimension.
	out := s.natsPub(t, "pelm.req.notes.store", `{"vector": [1, 0, 0], "phase": 0.5, "id": "alpha"}`, "Nats-Msg-Id:readme-1")
	t.Logf("nats pub -J: %s", firstLine(out))
	r := sub.next(t, "readme-1")
	if r["ok"] != false || errCode(r) != "bad_dimension" {
		t.Errorf("the README's 3-number store on a 384-dimension pelm: got %v, want error bad_dimension", r)
	}

	s.notes = makeItems("note", nNotes, 2)
	for _, it := range s.notes {
		body := fmt.Sprintf(`{"vector": %s, "phase": 0.5, "id": %q}`, vecJSON(it.vec), it.id)
		out := s.natsPub(t, "pelm.req.notes.store", body, "Nats-Msg-Id:"+it.id)
		t.Logf("nats pub -J pelm.req.notes.store ... -H Nats-Msg-Id:%s: %s", it.id, firstLine(out))
		r := sub.next(t, it.id)
		if r["ok"] != true || r["accepted"] != true || r["id"] != it.id {
			t.Errorf("store %s: result %v", it.id, r)
		}
	}
	q := s.notes[1]
	out = s.natsPub(t, "pelm.req.notes.retrieve", fmt.Sprintf(`{"vector": %s, "phase": 0.5, "top_k": 3}`, vecJSON(q.vec)), "Nats-Msg-Id:retrieve-1")
	t.Logf("nats pub -J pelm.req.notes.retrieve: %s", firstLine(out))
	r = sub.next(t, "retrieve-1")
	t.Logf("nats sub 'pelm.res.notes.>' received: %s", short(r))
	if ids := matchIDs(r); len(ids) != nNotes || ids[0] != q.id {
		t.Errorf("retrieve through the nats CLI: got ids %v, want %d with %s first", ids, nNotes, q.id)
	}
}

func (s *stack) stepVerbs(t *testing.T) {
	s.compMem = makeItems("c", nCompose, 1)
	for _, it := range s.compMem {
		// --moral 1: the adaptive filter's threshold rises past the
		// default moral score (0.8) after a few stores.
		r := s.pelmVerb(t, "store", "--memory", "compose", "--vector", vecJSON(it.vec), "--phase", "0.5", "--id", it.id, "--moral", "1")
		if r["ok"] != true || r["accepted"] != true {
			t.Fatalf("pelm store %s: %v", it.id, r)
		}
	}
	t.Logf("pelm store: %d items in the memory compose", nCompose)
	// deploy/README.md's `docker compose exec pelm /pelm <verb>`: the image's
	// own binary, with the container's NATS_URL.
	out := s.composeRun(t, true, "exec", "-T", "pelm", "/pelm", "retrieve", "--memory", "compose",
		"--vector", vecJSON(s.compMem[3].vec), "--phase", "0.5", "--top-k", "1")
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || !slices.Equal(matchIDs(r), []string{s.compMem[3].id}) {
		t.Errorf("exec pelm /pelm retrieve: %v %s", err, out)
	} else {
		t.Logf("docker-compose exec -T pelm /pelm retrieve ...: %s", short(r))
	}
	s.checkMemories(t, "after storing")
}

// stepGoClient uses the typed Go client from the host, as a program would:
// it creates a memory of its own settings, stores in it with many requests
// in flight, and retrieves; checkMemories then compares that memory after
// every later step too.
func (s *stack) stepGoClient(t *testing.T) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Create(ctx, "goclient", client.CreateRequest{Capacity: 100, Eviction: "confidence"})
	if err != nil {
		t.Fatalf("client Create: %v", err)
	}
	t.Logf("client Create goclient: config %+v", *res.Config)
	s.goMem = makeItems("g", 8, 3)
	var calls []*client.Call
	for _, it := range s.goMem {
		v := make([]float32, len(it.vec))
		for i, x := range it.vec {
			v[i] = float32(x)
		}
		call, err := c.Send("goclient", client.StoreRequest{ID: it.id, Vector: v, Phase: 0.5, Moral: client.Float(1)}, client.MsgID("go-"+it.id))
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call)
	}
	for i, call := range calls {
		if r, err := call.Result(ctx); err != nil || !r.Accepted {
			t.Fatalf("client store %s: %v %+v", s.goMem[i].id, err, r)
		}
	}
	q := make([]float32, dim)
	for i, x := range s.goMem[2].vec {
		q[i] = float32(x)
	}
	r, err := c.Retrieve(ctx, "goclient", client.RetrieveRequest{Vector: q, Phase: 0.5, TopK: 1})
	if err != nil || len(r.Matches) != 1 || r.Matches[0].ID != s.goMem[2].id {
		t.Fatalf("client Retrieve: %v %+v", err, r)
	}
	t.Logf("client: %d stores in flight at once, each accepted; Retrieve by %s's vector found %s (score %.4f)",
		len(calls), s.goMem[2].id, r.Matches[0].ID, r.Matches[0].Score)
	if _, err := c.Store(ctx, "goclient", client.StoreRequest{Vector: []float32{1, 2, 3}, Phase: 0.5}); !errors.Is(err, wire.ErrBadDimension) {
		t.Errorf("client store of 3 numbers into a 384-dimension memory: %v, want wire.ErrBadDimension", err)
	}
	s.checkMemories(t, "after the Go client")
}

func (s *stack) stepRestart(t *testing.T) {
	s.composeRun(t, true, "restart", "pelm")
	s.waitHealthy(t, "pelm")
	s.checkMemories(t, "after docker-compose restart pelm")
}

// stepKill checks what a user sees after `docker-compose kill -s KILL pelm`.
// Docker counts an explicit kill as a manual stop: the engine does not
// apply the restart policy (unless-stopped, like always, restarts only a
// container that exits by itself or a daemon restart), so pelm stays
// exited until `docker-compose up -d` (or start) brings it back.
func (s *stack) stepKill(t *testing.T) {
	id := s.id(t, "pelm")
	s.composeRun(t, true, "kill", "-s", "KILL", "pelm")
	time.Sleep(10 * time.Second) // long enough for a restart to have begun, if one were coming
	st := s.state(t, id)
	t.Logf("10 s after docker-compose kill -s KILL pelm: %s", st)
	if !strings.HasPrefix(st, "exited ") {
		t.Errorf("after docker-compose kill: state %q, want exited (docker does not restart a container it was told to kill)", st)
	}
	s.composeRun(t, true, "up", "-d")
	s.waitHealthy(t, "pelm")
	s.checkMemories(t, "after docker-compose kill and up -d")
}

// stepCrash kills pelm's process behind Docker's back, as a crash or the
// kernel's OOM killer would: restart: unless-stopped brings it back.
func (s *stack) stepCrash(t *testing.T) {
	id := s.id(t, "pelm")
	before := s.restartCount(t, id)
	pid, err := strconv.Atoi(strings.TrimSpace(run(t, "", nil, "docker", "inspect", "-f", "{{.State.Pid}}", id)))
	if err != nil || pid <= 0 {
		t.Fatalf("pelm's pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot signal pelm's process (pid %d) as uid %d: run as root to test a crash", pid, os.Getuid())
		}
		t.Fatal(err)
	}
	t.Logf("kill -KILL %d (pelm's process, seen from the host)", pid)
	deadline := time.Now().Add(60 * time.Second)
	for s.restartCount(t, id) == before {
		if time.Now().After(deadline) {
			t.Fatalf("the restart policy did not restart pelm within 60 s: %s", s.state(t, id))
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.waitHealthy(t, "pelm")
	t.Logf("restarted by its policy: restart count %d -> %d", before, s.restartCount(t, id))
	s.checkMemories(t, "after a crash")
}

func (s *stack) stepDownUp(t *testing.T) {
	s.composeRun(t, true, "down")
	s.composeRun(t, true, "up", "-d")
	s.waitHealthy(t, "nats", "pelm")
	s.checkMemories(t, "after docker-compose down and up")
}

func (s *stack) stepBench(t *testing.T) {
	start := time.Now()
	out := s.composeRun(t, true, "--profile", "bench", "run", "--rm", "bench")
	t.Logf("docker-compose --profile bench run --rm bench (%s), last lines:\n%s", time.Since(start).Round(time.Second), tail(out, 8))
	files := volumeFiles(t, project+"_bench-out")
	for _, name := range []string{"bench.json", "bench.png"} {
		f, ok := files[name]
		if !ok {
			t.Fatalf("the volume bench-out has no %s (it holds %v)", name, keys(files))
		}
		t.Logf("bench-out/%s: %d bytes, uid %d", name, len(f.data), f.uid)
		if f.uid != 10001 {
			t.Errorf("%s is owned by uid %d, want 10001", name, f.uid)
		}
	}
	var report map[string]any
	if err := json.Unmarshal(files["bench.json"].data, &report); err != nil {
		t.Errorf("bench.json is not JSON: %v", err)
	} else {
		t.Logf("bench.json has the keys %v", keys(report))
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(files["bench.png"].data)); err != nil {
		t.Errorf("bench.png is not a PNG: %v", err)
	} else {
		t.Logf("bench.png: %dx%d", cfg.Width, cfg.Height)
	}
	s.checkMemories(t, "after the bench")
}

func (s *stack) stepMonitoring(t *testing.T) {
	s.composeRun(t, true, "--profile", "monitoring", "up", "-d", "prometheus")
	defer s.composeRun(t, false, "--profile", "monitoring", "rm", "--stop", "--force", "prometheus")
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				ScrapeURL string            `json:"scrapeUrl"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	var last string
	poll(t, 90*time.Second, "prometheus scrapes pelm (/api/v1/targets)", func() bool {
		if err := getJSON("http://127.0.0.1:9090/api/v1/targets", &targets); err != nil {
			last = err.Error()
			return false
		}
		for _, tg := range targets.Data.ActiveTargets {
			last = fmt.Sprintf("job %s %s health %s %s", tg.Labels["job"], tg.ScrapeURL, tg.Health, tg.LastError)
			if tg.Labels["job"] == "pelm" && tg.Health == "up" {
				return true
			}
		}
		return false
	}, &last)
	t.Logf("/api/v1/targets: %s", last)

	alerts, err := os.ReadFile(filepath.Join(s.repo, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)`).FindAllSubmatch(alerts, -1) {
		want = append(want, string(m[1]))
	}
	sort.Strings(want)
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				File  string `json:"file"`
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
					State  string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	poll(t, 60*time.Second, "prometheus loads and evaluates alerts.yml (/api/v1/rules)", func() bool {
		if err := getJSON("http://127.0.0.1:9090/api/v1/rules", &rules); err != nil {
			last = err.Error()
			return false
		}
		var got []string
		evaluated := true
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				got = append(got, r.Name)
				evaluated = evaluated && r.Health == "ok"
			}
		}
		sort.Strings(got)
		last = fmt.Sprintf("rules %v, all evaluated ok: %v", got, evaluated)
		return slices.Equal(got, want) && evaluated
	}, &last)
	for _, g := range rules.Data.Groups {
		t.Logf("/api/v1/rules: group %s from %s: %d rules", g.Name, g.File, len(g.Rules))
		for _, r := range g.Rules {
			t.Logf("  %s: health %s, state %s", r.Name, r.Health, r.State)
		}
	}
	version := map[string]any{}
	if err := getJSON("http://127.0.0.1:9090/api/v1/status/buildinfo", &version); err == nil {
		t.Logf("prometheus build: %v", version["data"])
	}
}

func (s *stack) stepDownVolumes(t *testing.T) {
	s.composeRun(t, true, "down", "-v")
	vols := run(t, "", nil, "docker", "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+project)
	if strings.TrimSpace(vols) != "" {
		t.Errorf("volumes left after down -v: %s", vols)
	}
	s.composeRun(t, true, "up", "-d")
	s.waitHealthy(t, "nats", "pelm")
	for _, mem := range []string{"compose", "notes"} {
		r := s.pelmVerb(t, "retrieve", "--memory", mem, "--vector", vecJSON(s.compMem[0].vec), "--phase", "0.5", "--tolerance", "1", "--top-k", "100")
		t.Logf("after down -v and up, retrieve from %s: %s", mem, short(r))
		if ids := matchIDs(r); len(ids) != 0 {
			t.Errorf("after down -v the memory %s still holds %v", mem, ids)
		}
	}
}

// checkMemories retrieves every item stored so far and compares.
func (s *stack) checkMemories(t *testing.T, when string) {
	t.Helper()
	for _, m := range []struct {
		name  string
		items []item
	}{{"compose", s.compMem}, {"notes", s.notes}, {"goclient", s.goMem}} {
		if len(m.items) == 0 {
			continue
		}
		r := s.pelmVerb(t, "retrieve", "--memory", m.name, "--vector", vecJSON(m.items[0].vec), "--phase", "0.5", "--tolerance", "1", "--top-k", "100")
		got := matchIDs(r)
		sort.Strings(got)
		var want []string
		for _, it := range m.items {
			want = append(want, it.id)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: memory %s holds %v, want %v", when, m.name, got, want)
		}
		for _, it := range m.items {
			r := s.pelmVerb(t, "retrieve", "--memory", m.name, "--vector", vecJSON(it.vec), "--phase", "0.5", "--top-k", "1")
			ms, _ := r["matches"].([]any)
			if len(ms) != 1 {
				t.Fatalf("%s: retrieve %s from %s: %v", when, it.id, m.name, r)
			}
			first, _ := ms[0].(map[string]any)
			if score, _ := first["score"].(float64); first["id"] != it.id || score < 0.999 {
				t.Fatalf("%s: retrieve by %s's own vector from %s found %v (score %v)", when, it.id, m.name, first["id"], first["score"])
			}
		}
		t.Logf("%s: memory %s holds all %d items, each found first by its own vector", when, m.name, len(want))
	}
}

// ---- compose and docker ----

func composeCommand(t *testing.T) []string {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("neither `docker compose` nor docker-compose is installed (apt-get install --no-install-recommends docker-compose)")
	return nil
}

func (s *stack) composeEnv() []string {
	return []string{"COMPOSE_PROJECT_NAME=" + project}
}

// composeTry runs compose in the repository's root as a user would, in the
// test's project; it returns stdout and stderr together.
func (s *stack) composeTry(args ...string) (string, string, error) {
	cmd := exec.Command(s.compose[0], append(s.compose[1:], args...)...)
	cmd.Dir = s.repo
	cmd.Env = append(os.Environ(), s.composeEnv()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), strings.Join(s.compose, " ") + " " + shortArgs(args), err
}

func (s *stack) composeRun(t *testing.T, must bool, args ...string) string {
	t.Helper()
	start := time.Now()
	out, line, err := s.composeTry(args...)
	t.Logf("$ %s (%s)", line, time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		if must {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("%s: %v\n%s", line, err, tail(out, 10))
	}
	return out
}

// id is the container of a service (the only one: no scale here).
func (s *stack) id(t *testing.T, service string) string {
	t.Helper()
	out, _, err := s.composeTry("ps", "-q", service)
	id := strings.TrimSpace(out)
	if err != nil || id == "" || strings.Contains(id, "\n") {
		t.Fatalf("container of %s: %v %q", service, err, out)
	}
	return id
}

func (s *stack) state(t *testing.T, id string) string {
	out, err := exec.Command("docker", "inspect", "-f",
		"{{.State.Status}} exit={{.State.ExitCode}} health={{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} restarts={{.RestartCount}}", id).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", id, err)
	}
	return strings.TrimSpace(string(out))
}

func (s *stack) restartCount(t *testing.T, id string) int {
	out := strings.TrimSpace(run(t, "", nil, "docker", "inspect", "-f", "{{.RestartCount}}", id))
	n, _ := strconv.Atoi(out)
	return n
}

// waitHealthy waits, bounded, until the services' healthchecks pass.
func (s *stack) waitHealthy(t *testing.T, services ...string) {
	t.Helper()
	start := time.Now()
	for _, svc := range services {
		var last string
		poll(t, 120*time.Second, svc+" healthy", func() bool {
			out, _, err := s.composeTry("ps", "-q", svc)
			if id := strings.TrimSpace(out); err == nil && id != "" {
				last = s.state(t, id)
			}
			return strings.HasPrefix(last, "running ") && strings.Contains(last, "health=healthy")
		}, &last)
	}
	t.Logf("healthy: %v after %s", services, time.Since(start).Round(100*time.Millisecond))
}

// volumeFiles reads the files at the root of a named volume through a
// container that is created and never started (docker cp).
func volumeFiles(t *testing.T, volume string) map[string]volFile {
	id := strings.TrimSpace(run(t, "", nil, "docker", "create", "-v", volume+":/data", imgPelm))
	defer exec.Command("docker", "rm", "-f", id).Run()
	cmd := exec.Command("docker", "cp", id+":/data/.", "-")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker cp from the volume %s: %v", volume, err)
	}
	files := map[string]volFile{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			files[filepath.Base(h.Name)] = volFile{data: data, uid: h.Uid}
		}
	}
	return files
}

type volFile struct {
	data []byte
	uid  int
}

// ---- the nats CLI and the pelm binary ----

// natsPub publishes as deploy/README.md does: a JetStream publish (-J) of
// JSON with its Content-Type.
func (s *stack) natsPub(t *testing.T, subject, body string, headers ...string) string {
	t.Helper()
	args := []string{"pub", "-J", subject, body, "-H", "Content-Type:application/json"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	return run(t, "", []string{"NATS_URL=" + natsURL}, s.nats, args...)
}

type natsSub struct {
	cmd   *exec.Cmd
	lines chan string
	seen  []map[string]any
}

// natsSub runs `nats sub <subject> --raw` (one result body a line) and
// returns once it receives: a plain publish on the subject shows that.
func (s *stack) natsSub(t *testing.T, subject string) *natsSub {
	t.Helper()
	cmd := exec.Command(s.nats, "sub", subject, "--raw")
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ nats sub '%s' --raw  (in the background)", subject)
	sub := &natsSub{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			sub.lines <- sc.Text()
		}
		close(sub.lines)
	}()
	probe := strings.ReplaceAll(subject, ">", "subscribed")
	deadline := time.Now().Add(20 * time.Second)
	for {
		_ = exec.Command(s.nats, "pub", "--server", natsURL, probe, `{"probe": true}`).Run()
		select {
		case l := <-sub.lines:
			if strings.Contains(l, `"probe"`) {
				return sub
			}
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			sub.stop()
			t.Fatalf("nats sub %s received nothing within 20 s", subject)
		}
	}
}

// next returns the result whose req_id is reqID.
func (n *natsSub) next(t *testing.T, reqID string) map[string]any {
	t.Helper()
	for i, r := range n.seen {
		if r["req_id"] == reqID {
			n.seen = append(n.seen[:i], n.seen[i+1:]...)
			return r
		}
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-n.lines:
			if !ok {
				t.Fatalf("nats sub ended before the result of %s", reqID)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				continue // a probe's leftover, or not a result
			}
			if r["req_id"] == reqID {
				return r
			}
			n.seen = append(n.seen, r)
		case <-timeout:
			t.Fatalf("no result for %s on nats sub within 20 s", reqID)
		}
	}
}

func (n *natsSub) stop() {
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// pelmVerb runs a client verb of the host's pelm binary against the
// published port and returns its result.
func (s *stack) pelmVerb(t *testing.T, verb string, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(s.pelm, append([]string{verb, "--nats-url", natsURL, "--timeout", "20s"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pelm %s %s: %v\n%s", verb, shortArgs(args), err, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("pelm %s printed %q: %v", verb, stdout.String(), err)
	}
	return r
}

// ---- small helpers ----

// run runs a command and returns its stdout and stderr; a failure ends the test.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, shortArgs(args), err, out)
	}
	return string(out)
}

func poll(t *testing.T, limit time.Duration, what string, cond func() bool, last *string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last seen: %s)", what, limit, *last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func getJSON(url string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// staticBusybox finds a statically linked busybox (Debian's busybox-static):
// the stand-ins have no C library for a dynamic one.
func staticBusybox(t *testing.T) string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			static = static && prog.Type != elf.PT_INTERP
		}
		f.Close()
		if static {
			return p
		}
	}
	t.Fatal("no static busybox: apt-get install busybox-static")
	return ""
}

func makeItems(prefix string, n int, seed uint64) []item {
	rng := rand.New(rand.NewPCG(seed, 42))
	items := make([]item, n)
	for i := range items {
		v := make([]float64, dim)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		items[i] = item{id: fmt.Sprintf("%s-%d", prefix, i), vec: v}
	}
	return items
}

func vecJSON(v []float64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(x, 'g', 6, 64))
	}
	b.WriteByte(']')
	return b.String()
}

func matchIDs(r map[string]any) []string {
	ms, _ := r["matches"].([]any)
	ids := []string{}
	for _, m := range ms {
		if mm, ok := m.(map[string]any); ok {
			id, _ := mm["id"].(string)
			ids = append(ids, id)
		}
	}
	return ids
}

func errCode(r map[string]any) string {
	e, _ := r["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// short renders a result without its vectors and long fields.
func short(r map[string]any) string {
	b, _ := json.Marshal(r)
	s := string(b)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

func shortArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if len(a) > 60 {
			a = a[:60] + "...]"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// portsFree fails early, and clearly, when a port the compose file
// publishes is taken.
func portsFree(t *testing.T) {
	for _, p := range []string{"127.0.0.1:4222", "127.0.0.1:8222", ":8080", "127.0.0.1:9090"} {
		l, err := net.Listen("tcp", p)
		if err != nil {
			t.Fatalf("docker-compose.yml publishes %s, which is taken: %v", p, err)
		}
		l.Close()
	}
}
