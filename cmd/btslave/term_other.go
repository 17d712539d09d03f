//go:build !linux

package main

import "io"

// isTerminal is false off Linux: the demo prints lines there.
func isTerminal(io.Writer) bool { return false }
