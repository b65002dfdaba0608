package main

import "testing"

// TestRun runs the demo end to end, so that the README's command stays true.
func TestRun(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
