//go:build !race

package pelm

// raceEnabled says the race detector is on.
const raceEnabled = false
