//go:build race

package secsock

// atkRace reports whether the race detector is on: it makes sync.Pool
// drop items at random, so allocation counts are not meaningful, and it
// slows scalar multiplications several times.
const atkRace = true
