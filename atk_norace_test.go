//go:build !race

package secsock

// atkRace reports whether the race detector is on (see atk_race_test.go).
const atkRace = false
