//go:build race

package main

// raceBuild is set when the tests (and the daemon they run, the test
// binary itself) are built with the race detector, which multiplies
// memory use.
const raceBuild = true
