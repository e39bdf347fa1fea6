//go:build race

package bench

// raceEnabled reports whether the race detector is on; the benchmarks then
// default to the quick mode.
const raceEnabled = true
