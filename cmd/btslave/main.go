// Command btslave is a BitTorrent repeater daemon: it joins swarms that need
// help as an upload-only partial seed, serves its owner's own client, and
// trades help with friends. Run "btslave --help" for the commands.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}
