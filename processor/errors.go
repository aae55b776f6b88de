package processor

import "errors"

// Sentinel errors of the package.
var (
	ErrConfig = errors.New("processor: invalid config")
	ErrSetup  = errors.New("processor: jetstream setup failed")
)
