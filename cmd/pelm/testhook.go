package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pelm-dev/pelm/processor"
)

// testHook builds the processor's fault-test hook from two variables that
// only fault tests set:
//
//	PELM_TEST_CRASH=<point>:<n>       SIGKILL this process the n-th time the
//	                                  batch loop reaches point
//	PELM_TEST_DELAY=<point>:<duration> sleep there, every time
//	PELM_TEST_POISON=<id>             SIGKILL this process whenever a request
//	                                  with that id is about to run
//	PELM_TEST_STOP=<point>:<n>        SIGSTOP this process the n-th time a batch
//	                                  loop reaches point (a test sends SIGCONT)
//
// Points are processor.HookAfterPull, HookAfterPersist, HookAfterPublish,
// HookBeforeAck and HookAfterAck. With none set it returns nil.
func testHook(crash, delay, poison, stop string) (func(string), error) {
	if crash == "" && delay == "" && poison == "" && stop == "" {
		return nil, nil
	}
	valid := map[string]bool{processor.HookAfterPull: true, processor.HookAfterPersist: true,
		processor.HookAfterPublish: true, processor.HookBeforeAck: true, processor.HookAfterAck: true}
	split := func(name, v string) (string, string, error) {
		point, arg, ok := strings.Cut(v, ":")
		if !ok || !valid[point] {
			return "", "", fmt.Errorf("%s=%q: want <point>:<arg> with a point of the processor's batch loop", name, v)
		}
		return point, arg, nil
	}
	var crashPoint, delayPoint string
	var crashAt int
	var pause time.Duration
	var err error
	if crash != "" {
		var arg string
		if crashPoint, arg, err = split("PELM_TEST_CRASH", crash); err != nil {
			return nil, err
		}
		if crashAt, err = strconv.Atoi(arg); err != nil || crashAt < 1 {
			return nil, fmt.Errorf("PELM_TEST_CRASH=%q: want a count of at least 1", crash)
		}
	}
	var stopPoint string
	var stopAt int
	if stop != "" {
		var arg string
		if stopPoint, arg, err = split("PELM_TEST_STOP", stop); err != nil {
			return nil, err
		}
		if stopAt, err = strconv.Atoi(arg); err != nil || stopAt < 1 {
			return nil, fmt.Errorf("PELM_TEST_STOP=%q: want a count of at least 1", stop)
		}
	}
	if delay != "" {
		var arg string
		if delayPoint, arg, err = split("PELM_TEST_DELAY", delay); err != nil {
			return nil, err
		}
		if pause, err = time.ParseDuration(arg); err != nil {
			return nil, fmt.Errorf("PELM_TEST_DELAY=%q: %w", delay, err)
		}
	}
	var seen, stops atomic.Int64 // the batch loops of several partitions call the hook
	poisonPoint := processor.HookRequest + poison
	return func(point string) {
		if point == stopPoint && stops.Add(1) == int64(stopAt) {
			_ = syscall.Kill(syscall.Getpid(), syscall.SIGSTOP)
			// The stop reaches every thread within microseconds, but this
			// one may run on for a few before it: wait here, so that the
			// process stops at this point and not somewhat after it.
			time.Sleep(50 * time.Millisecond)
		}
		if poison != "" && point == poisonPoint {
			_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
			select {}
		}
		if point == delayPoint {
			time.Sleep(pause)
		}
		if point == crashPoint {
			if seen.Add(1) == int64(crashAt) {
				_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}, nil
}
