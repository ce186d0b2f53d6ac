//go:build !race

package fuzzy

// raceDetector reports a -race build.
const raceDetector = false
