// Package config loads, validates and prints btslave's configuration.
//
// The configuration is TOML. Its defaults are embedded (default.toml, also
// what "btslave config init" writes), so the daemon runs with no file at
// all; a file only needs the keys it changes.
//
// # Strictness
//
// Parsing is strict: an unknown key, a bad size ("256MiB"), rate, duration,
// listen address or cron spec is an [Error] naming the file, line, key and
// reason. [Parse] reports every problem it finds at once, as [Errors].
//
// # Locations
//
// The file is $XDG_CONFIG_HOME/btslave/btslave.toml unless --config or
// $BTSLAVE_CONFIG names another; the data directory is
// $XDG_DATA_HOME/btslave unless data_dir or --data-dir names another.
package config
