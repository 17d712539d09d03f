package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/btslave/btslave/config"
)

func configCommand() *command {
	return &command{
		name:  "config",
		short: "write or check a configuration file",
		subs:  []*command{configInitCommand(), configCheckCommand()},
	}
}

func configInitCommand() *command {
	var force bool
	return &command{
		name:  "init",
		args:  "[PATH]",
		short: "write the commented default configuration",
		long: `Writes the default configuration, every key commented, to PATH (default
$XDG_CONFIG_HOME/btslave/btslave.toml). An existing file is kept unless
--force is given.`,
		flags: func(fs *flag.FlagSet) { fs.BoolVar(&force, "force", false, "overwrite an existing file") },
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 1 {
				return usageErr("config init takes at most one PATH")
			}
			path := config.DefaultFile(e.getenv)
			if len(args) == 1 {
				path = args[0]
			}
			if _, err := os.Stat(path); err == nil && !force {
				return usageErr("%s exists; use --force to overwrite it", path)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("config init: %w", err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("config init: %w", err)
			}
			if err := writeFileAtomic(path, config.DefaultTOML, 0o600); err != nil {
				return fmt.Errorf("config init: %w", err)
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", path)
			return nil
		},
	}
}

func configCheckCommand() *command {
	var g globalOptions
	return &command{
		name:  "check",
		args:  "[PATH]",
		short: "validate a configuration and print the effective settings",
		long: `Reads PATH (default: the file btslave run would read), reports every problem
with file:line: key: reason, and otherwise prints the effective
configuration, defaults included, with secrets hidden.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 1 {
				return usageErr("config check takes at most one PATH")
			}
			if len(args) == 1 {
				g.configPath = args[0]
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			out, err := cfg.Redacted().Encode()
			if err != nil {
				return err
			}
			src := cfg.File
			if src == "" {
				src = "embedded defaults (no config file found)"
			}
			fmt.Fprintf(e.stdout, "# %s: OK\n# data dir: %s\n%s", termSafe(src), termSafe(cfg.DataDir), termSafeLines(string(out)))
			return nil
		},
	}
}
