package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
)

// Exit codes, documented in every command's help.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // usage or configuration error
)

const exitStatusHelp = `
EXIT STATUS
  0  success
  1  runtime failure (the daemon is not running, a port is taken, ...)
  2  usage or configuration error
`

// exitError carries an exit code to Main, the one place that maps errors to
// codes.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// env is the process environment, passed down instead of read from globals
// so that tests can run commands in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one CLI command.
type command struct {
	name  string
	args  string // positional arguments for the usage line
	short string
	long  string
	flags func(fs *flag.FlagSet) // may be nil
	run   func(ctx context.Context, e env, args []string) error
	subs  []*command
}

// globalOptions are accepted by every command that reads the config.
type globalOptions struct {
	configPath string
	dataDir    string
}

func (g *globalOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&g.configPath, "config", "", "config `file` (default $BTSLAVE_CONFIG, then $XDG_CONFIG_HOME/btslave/btslave.toml, then embedded defaults)")
	fs.StringVar(&g.dataDir, "data-dir", "", "data `dir` (default data_dir from the config, then $XDG_DATA_HOME/btslave)")
}

// load finds, reads and validates the config and resolves the data dir.
// Every failure is a configuration error (exit 2).
func (g *globalOptions) load(e env) (*config.Config, error) {
	path, err := config.Locate(g.configPath, e.getenv)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	cfg, err := config.LoadOrDefault(path)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	if err := cfg.ResolveDataDir(g.dataDir, e.getenv); err != nil {
		return nil, &exitError{exitUsage, err}
	}
	return cfg, nil
}

// apiClient returns a client for the running daemon: its address from the
// data dir (or the config), its token from the config or the data dir.
func (g *globalOptions) apiClient(e env) (*api.Client, error) {
	cfg, err := g.load(e)
	if err != nil {
		return nil, err
	}
	token := cfg.API.Token
	if token == "" {
		if token, err = api.ReadToken(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("%w (is the daemon running with --data-dir %s?)", err, cfg.DataDir)
		}
	}
	return api.NewClient(api.DialAddr(cfg.DataDir, string(cfg.API.Listen)), token), nil
}

// callAPI runs call against the running daemon, within timeout. A request
// the daemon refused as bad is a usage error (exit 2).
func (g *globalOptions) callAPI(ctx context.Context, e env, timeout time.Duration, call func(context.Context, *api.Client) error) error {
	client, err := g.apiClient(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = call(ctx, client)
	if errors.Is(err, api.ErrBadRequest) {
		return &exitError{exitUsage, err}
	}
	return err
}

// printJSON writes v as indented JSON, for the --json flags.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func rootCommand() *command {
	return &command{
		name:  "btslave",
		short: "BitTorrent repeater daemon",
		long: `btslave joins BitTorrent swarms that need help as an upload-only partial
seed with a bounded piece cache, helps its owner's own client download, and
trades help with friends.`,
		subs: []*command{demoCommand(), webCommand(), runCommand(), repeatCommand(), leaveCommand(), helpMasterCommand(), statusCommand(), swarmsCommand(), feedsCommand(), trackerCommand(), publishCommand(), publishedCommand(), unpublishCommand(), everseedCommand(), mountCommand(), umountCommand(), friendsCommand(), ledgerCommand(), cashinCommand(), configCommand(), versionCommand()},
	}
}

// Main runs the CLI and returns the process exit code.
func Main(ctx context.Context, args []string, e env) int {
	err := rootCommand().exec(ctx, e, []string{"btslave"}, args)
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(e.stderr, "btslave: %s\n", termSafeLines(err.Error()))
	}
	return code
}

func (c *command) exec(ctx context.Context, e env, path, args []string) error {
	if len(c.subs) > 0 {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			c.printHelp(e.stdout, path, nil)
			if len(args) == 0 {
				return usageErr("%s needs a command", strings.Join(path, " "))
			}
			return nil
		}
		for _, s := range c.subs {
			if s.name == args[0] {
				return s.exec(ctx, e, append(path, s.name), args[1:])
			}
		}
		return usageErr("unknown command %q; see '%s --help'", args[0], strings.Join(path, " "))
	}
	fs := flag.NewFlagSet(strings.Join(path, " "), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(e.stdout, path, fs)
		return nil
	}
	if err != nil {
		return usageErr("%v; see '%s --help'", err, strings.Join(path, " "))
	}
	return c.run(ctx, e, pos)
}

// parseInterspersed lets flags follow positional arguments
// ("config init PATH --force"); "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *command) printHelp(w io.Writer, path []string, fs *flag.FlagSet) {
	name := strings.Join(path, " ")
	fmt.Fprintf(w, "%s: %s\n\n", name, c.short)
	if c.long != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.long))
	}
	if len(c.subs) > 0 {
		fmt.Fprintf(w, "USAGE\n  %s COMMAND [flags]\n\nCOMMANDS\n", name)
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-10s %s\n", s.name, s.short)
		}
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags.\n", name)
	} else {
		usage := name + " [flags]"
		if c.args != "" {
			usage += " " + c.args
		}
		fmt.Fprintf(w, "USAGE\n  %s\n", usage)
		if fs != nil {
			var lines []string
			fs.VisitAll(func(f *flag.Flag) {
				arg, help := flag.UnquoteUsage(f)
				l := "  --" + f.Name
				if arg != "" {
					l += " " + arg
				}
				l += "\n      " + help
				if f.DefValue != "" && f.DefValue != "false" {
					l += fmt.Sprintf(" (default %q)", f.DefValue)
				}
				lines = append(lines, l)
			})
			sort.Strings(lines)
			fmt.Fprintf(w, "\nFLAGS\n%s\n  --help\n      show this help\n", strings.Join(lines, "\n"))
		}
	}
	fmt.Fprint(w, exitStatusHelp)
}
