package main

import (
	"fmt"
	"strconv"
	"strings"
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
//
// Points are processor.HookAfterPull, HookAfterPersist, HookAfterPublish,
// HookBeforeAck and HookAfterAck. With none set it returns nil.
func testHook(crash, delay, poison string) (func(string), error) {
	if crash == "" && delay == "" && poison == "" {
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
	if delay != "" {
		var arg string
		if delayPoint, arg, err = split("PELM_TEST_DELAY", delay); err != nil {
			return nil, err
		}
		if pause, err = time.ParseDuration(arg); err != nil {
			return nil, fmt.Errorf("PELM_TEST_DELAY=%q: %w", delay, err)
		}
	}
	seen := 0 // the hook runs on the batch goroutine only
	poisonPoint := processor.HookRequest + poison
	return func(point string) {
		if poison != "" && point == poisonPoint {
			_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
			select {}
		}
		if point == delayPoint {
			time.Sleep(pause)
		}
		if point == crashPoint {
			if seen++; seen == crashAt {
				_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}, nil
}
