package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// budgetShare is the share of the memory limit that --max-bytes takes by
// default: the rest is for the Go runtime's heap growth, batch scratch,
// NATS buffers and the embedded server.
const budgetShare = 0.6

// defaultMaxBytes is budgetShare of the container's memory limit (cgroup
// v2 or v1), or of the machine's memory; 0 (no bound) when neither can be
// read.
func defaultMaxBytes() int64 {
	return int64(float64(memoryLimit()) * budgetShare)
}

// memoryLimit is the container's memory limit, else the machine's memory,
// in bytes; 0 when unknown.
func memoryLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		if err == nil && v > 0 && v < 1<<60 { // "max", or v1's huge number, means none
			if m := machineMemory(); m == 0 || v < m {
				return v
			}
		}
	}
	return machineMemory()
}

// machineMemory is MemTotal of /proc/meminfo, in bytes.
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// byteSize is a flag of bytes with an optional unit: 0, 512MiB, 16GiB, 2GB.
type byteSize struct{ n int64 }

func (b *byteSize) String() string { return strconv.FormatInt(b.n, 10) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return fmt.Errorf("%q: want bytes, such as 0, 512MiB or 16GiB", s)
	}
	b.n = int64(v * float64(mult))
	return nil
}
