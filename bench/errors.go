package bench

import "errors"

// Sentinel errors of the package, returned wrapped with context; test them
// with errors.Is.
var (
	// ErrConfig is a Config that Validate refuses, or a string that
	// ParseMix or ParsePhases cannot read.
	ErrConfig = errors.New("bench: invalid config")
	// ErrSetup is a failure to create the echo's stream or consumer, or
	// to subscribe to the results.
	ErrSetup = errors.New("bench: setup failed")
	// ErrNoResults is a closed-loop phase (preload, warm-up) that got no
	// result for Config.Timeout: nothing is processing the requests.
	ErrNoResults = errors.New("bench: no results")
)
