package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EnvConfig names the environment variable that points at the config file.
const EnvConfig = "BTSLAVE_CONFIG"

// FileName is the config file's name inside the XDG config directory.
const FileName = "btslave.toml"

// Locate returns the config file to read. An explicit path (from the
// --config flag, else $BTSLAVE_CONFIG) must exist; the XDG default
// ($XDG_CONFIG_HOME/btslave/btslave.toml) is used only when present. It
// returns "" when there is no file and the embedded defaults apply.
func Locate(flagPath string, getenv func(string) string) (string, error) {
	explicit := flagPath
	if explicit == "" {
		explicit = getenv(EnvConfig)
	}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("config file %s: %w", explicit, err)
		}
		return explicit, nil
	}
	p := DefaultFile(getenv)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("config file %s: %w", p, err)
	}
	return p, nil
}

// DefaultFile is where "btslave config init" writes when given no path.
func DefaultFile(getenv func(string) string) string {
	return filepath.Join(xdgDir(getenv, "XDG_CONFIG_HOME", ".config"), "btslave", FileName)
}

// DefaultDataDir is the data directory used when neither --data-dir nor
// data_dir is set.
func DefaultDataDir(getenv func(string) string) string {
	return filepath.Join(xdgDir(getenv, "XDG_DATA_HOME", filepath.Join(".local", "share")), "btslave")
}

func xdgDir(getenv func(string) string, env, fallback string) string {
	if d := getenv(env); filepath.IsAbs(d) {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, fallback)
}

// LoadOrDefault reads path, or returns the embedded defaults when path is "".
func LoadOrDefault(path string) (*Config, error) {
	if path == "" {
		c := Default()
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c, nil
	}
	return Load(path)
}

// ResolveDataDir applies the precedence --data-dir flag > data_dir key >
// XDG default and stores the absolute result in c.DataDir.
func (c *Config) ResolveDataDir(flagDir string, getenv func(string) string) error {
	d := flagDir
	if d == "" {
		d = c.DataDir
	}
	if d == "" {
		d = DefaultDataDir(getenv)
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", d, err)
	}
	c.DataDir = abs
	return nil
}
