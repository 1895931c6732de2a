// Package secret holds configuration values that must never be shown:
// passwords, access keys, connection strings with passwords. A Secret
// prints as "[redacted]" through fmt, log/slog, encoding/json and
// encoding/text; string(s) is the value itself.
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a string that does not print: fmt, slog, encoding/json and
// encoding/text show "[redacted]" (or "" when it is empty). Use string(s)
// where the value itself is needed.
type Secret string

const redacted = "[redacted]"

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string { return s.shown() }

// GoString is String quoted.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.shown()) }

// Format prints String whatever the verb, so that no verb (%d, %x...)
// shows the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		fmt.Fprintf(f, "%q", s.shown())
		return
	}
	fmt.Fprint(f, s.shown())
}

// LogValue is String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// MarshalText is String.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// ReadFile reads a secret from a file, trimming surrounding whitespace.
// Errors name the file (as key, the option it came from), never its
// content; an empty file is an error.
func ReadFile(key, path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s %s: empty", key, path)
	}
	return Secret(v), nil
}
