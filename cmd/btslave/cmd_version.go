package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"

	"github.com/btslave/btslave/internal/buildinfo"
)

func versionCommand() *command {
	var asJSON bool
	return &command{
		name:  "version",
		short: "print btslave's version",
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print as JSON") },
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("version takes no arguments")
			}
			if asJSON {
				return json.NewEncoder(e.stdout).Encode(map[string]string{
					"version": buildinfo.String(), "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
				})
			}
			fmt.Fprintf(e.stdout, "btslave %s (%s %s/%s)\n", buildinfo.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
