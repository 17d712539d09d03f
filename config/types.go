package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Size is a byte count written with an optional unit: "256MiB", "1.5GiB",
// "500kB", "0" or a plain integer.
type Size int64

var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kb":  1e3,
	"kib": 1 << 10,
	"m":   1 << 20,
	"mb":  1e6,
	"mib": 1 << 20,
	"g":   1 << 30,
	"gb":  1e9,
	"gib": 1 << 30,
	"t":   1 << 40,
	"tb":  1e12,
	"tib": 1 << 40,
}

// ParseSize parses a size such as "256MiB".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: want a number followed by a unit such as MiB", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, kB, KiB, MB, MiB, GB, GiB, TB, TiB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: bad number", s)
	}
	v := f * mult
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Size(math.Round(v)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String formats the size with the largest binary unit that divides it
// evenly, so that it parses back to the same value.
func (s Size) String() string {
	v := int64(s)
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

// Rate is a byte rate per second: "2MiB/s", "2MiB" or "0" (unlimited).
type Rate int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	v, err := ParseSize(t)
	if err != nil {
		return fmt.Errorf("rate: %w", err)
	}
	*r = Rate(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// String formats the rate; zero is "unlimited" in logs but "0" here so that
// it parses back.
func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	return Size(r).String() + "/s"
}

// Unlimited reports whether the rate places no cap.
func (r Rate) Unlimited() bool { return r <= 0 }

// Duration is a time.Duration written as "90s", "15m", "6h" or "7d".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("duration %q: want e.g. 90s, 15m, 6h or 7d", s)
		}
		*d = Duration(n * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. 90s, 15m, 6h or 7d", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q: must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Addr is a listen address "host:port". The host is an IP literal,
// "localhost" or empty (all interfaces); the port is 0..65535.
type Addr string

// ParseAddr checks a listen address.
func ParseAddr(s string) (Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("address %q: want host:port, e.g. 127.0.0.1:7979", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("address %q: port %q is not a number from 0 to 65535", s, port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("address %q: host %q is not an IP address (names other than localhost are not allowed for listeners)", s, host)
		}
	}
	return Addr(s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Addr) UnmarshalText(b []byte) error {
	v, err := ParseAddr(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Host returns the host part.
func (a Addr) Host() string { h, _, _ := net.SplitHostPort(string(a)); return h }

// Port returns the port number.
func (a Addr) Port() int {
	_, p, _ := net.SplitHostPort(string(a))
	n, _ := strconv.Atoi(p)
	return n
}

// IsLoopback reports whether the address binds only to loopback.
func (a Addr) IsLoopback() bool {
	h := a.Host()
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// Cron is a schedule in robfig/cron syntax: five fields ("*/15 * * * *") or
// a descriptor ("@every 15m", "@hourly").
type Cron string

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule parses the spec.
func (c Cron) Schedule() (cron.Schedule, error) { return cronParser.Parse(string(c)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Cron) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if _, err := cronParser.Parse(s); err != nil {
		return fmt.Errorf("cron spec %q: %w", s, err)
	}
	*c = Cron(s)
	return nil
}
