//go:build race

package pelm

// raceEnabled says the race detector is on: the randomised tests then run
// fewer seeds, the detector making them about ten times slower.
const raceEnabled = true
