package httpendpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

// Limits of the options (Firehose's EndpointConfiguration and
// RequestConfiguration) and defaults.
const (
	MaxURLLength            = 1000
	MaxNameLength           = 256
	MaxAccessKeyLength      = 4096
	MaxCommonAttributes     = 50
	MaxAttributeNameLength  = 256
	MaxAttributeValueLength = 1024
	// DefaultRequestTimeout is Firehose's: an endpoint has 3 minutes to
	// answer each attempt.
	DefaultRequestTimeout = 3 * time.Minute
)

// Content encodings accepted in Options.ContentEncoding (Firehose's
// ContentEncoding).
const (
	EncodingNone = "NONE"
	EncodingGzip = "GZIP"
)

// Secret is a string that does not print (see package
// destinations/internal/secret).
type Secret = secret.Secret

// Options configure an HTTP endpoint destination (Firehose's
// HttpEndpointDestinationConfiguration). The YAML keys are the block's keys
// in a stream's configuration. Buffering hints and the retry duration are
// the stream's; the error output (Firehose's S3 backup) is the stream's
// error_output.
type Options struct {
	// URL is where records are POSTed, unchanged (required). Firehose
	// accepts only https on port 443; Sluice accepts http too, for
	// endpoints on the local network.
	URL string `yaml:"url"`
	// Name is the endpoint's display name (EndpointConfiguration.Name),
	// shown by DescribeDeliveryStream.
	Name string `yaml:"name"`
	// AccessKey is sent verbatim as X-Amz-Firehose-Access-Key; write it
	// as ${ENV}. It is never logged or described.
	AccessKey Secret `yaml:"access_key"`
	// AccessKeyFile is a file holding the access key (surrounding
	// whitespace trimmed), read when the destination is built. At most
	// one of AccessKey and AccessKeyFile; with neither no key is sent.
	AccessKeyFile string `yaml:"access_key_file"`
	// ContentEncoding is NONE or GZIP (case-insensitive): GZIP compresses
	// request bodies and sends Content-Encoding: gzip.
	ContentEncoding string `yaml:"content_encoding"`
	// CommonAttributes are sent with every request in the
	// X-Amz-Firehose-Common-Attributes header as
	// {"commonAttributes":{name:value,...}}.
	CommonAttributes map[string]string `yaml:"common_attributes"`
	// RequestTimeout bounds each attempt, from sending the request to
	// reading the response (Firehose: 3 minutes).
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// DefaultOptions returns the defaults a configuration block is decoded
// onto.
func DefaultOptions() Options {
	return Options{ContentEncoding: EncodingNone, RequestTimeout: DefaultRequestTimeout}
}

// Validate reports every problem with the options, each as a
// *pipeline.OptionError at its key.
func (o Options) Validate() error {
	_, err := Compile(o)
	return err
}

// attribute is one common attribute.
type attribute struct {
	Name  string `json:"AttributeName"`
	Value string `json:"AttributeValue"`
}

// Config is a compiled, valid set of Options: what New builds a
// destination from. It prints without the access key.
type Config struct {
	url           string
	hostPort      string // for Ready
	name          string
	accessKey     Secret
	accessKeyFile string
	gzip          bool
	attrs         []attribute // sorted by name
	attrsHeader   string      // "" without attributes
	timeout       time.Duration
}

// Compile validates opts and compiles them. Every problem is reported, as
// a *pipeline.OptionError with the option's key, joined with errors.Join.
// It does no I/O: access_key_file is read by New.
func Compile(opts Options) (*Config, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	c := &Config{name: opts.Name, accessKey: opts.AccessKey, accessKeyFile: opts.AccessKeyFile, timeout: opts.RequestTimeout}

	if hp, err := checkURL(opts.URL); err != nil {
		fail("url", "%v", err)
	} else {
		c.url, c.hostPort = opts.URL, hp
	}
	switch n := utf8.RuneCountInString(opts.Name); {
	case n > MaxNameLength:
		fail("name", "%d characters, at most %d", n, MaxNameLength)
	case opts.Name != "" && strings.TrimSpace(opts.Name) == "":
		fail("name", "must not be blank")
	}
	switch {
	case opts.AccessKey != "" && opts.AccessKeyFile != "":
		fail("access_key", "set access_key or access_key_file, not both")
	case opts.AccessKey != "":
		if err := checkAccessKey(string(opts.AccessKey)); err != nil {
			fail("access_key", "%v", err)
		}
	}
	switch strings.ToUpper(opts.ContentEncoding) {
	case EncodingNone, "":
	case EncodingGzip:
		c.gzip = true
	default:
		fail("content_encoding", "%q is not NONE or GZIP", opts.ContentEncoding)
	}
	if len(opts.CommonAttributes) > MaxCommonAttributes {
		fail("common_attributes", "%d attributes, at most %d", len(opts.CommonAttributes), MaxCommonAttributes)
	}
	for _, name := range slices.Sorted(maps.Keys(opts.CommonAttributes)) {
		value := opts.CommonAttributes[name]
		switch n := utf8.RuneCountInString(name); {
		case strings.TrimSpace(name) == "":
			fail("common_attributes", "attribute names must not be blank")
		case n > MaxAttributeNameLength:
			fail("common_attributes", "a name of %d characters, at most %d", n, MaxAttributeNameLength)
		}
		if n := utf8.RuneCountInString(value); n > MaxAttributeValueLength {
			key := "common_attributes"
			if !strings.ContainsAny(name, ".[") {
				key += "." + name // the value's own position
			}
			fail(key, "value of %d characters, at most %d", n, MaxAttributeValueLength)
		}
		c.attrs = append(c.attrs, attribute{Name: name, Value: value})
	}
	if len(c.attrs) > 0 {
		m := make(map[string]string, len(c.attrs))
		for _, a := range c.attrs {
			m[a.Name] = a.Value
		}
		h, err := json.Marshal(struct {
			CommonAttributes map[string]string `json:"commonAttributes"`
		}{m})
		if err != nil {
			fail("common_attributes", "%v", err)
		}
		c.attrsHeader = string(h)
	}
	switch {
	case opts.RequestTimeout == 0:
		c.timeout = DefaultRequestTimeout
	case opts.RequestTimeout < 0:
		fail("request_timeout", "%v is negative", opts.RequestTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// checkURL validates an endpoint URL and returns its host:port.
func checkURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("required (the endpoint's http:// or https:// URL)")
	}
	if n := len(s); n > MaxURLLength {
		return "", fmt.Errorf("%d characters, at most %d", n, MaxURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", err)
	}
	port := ""
	switch u.Scheme {
	case "https":
		port = "443"
	case "http":
		port = "80"
	default:
		return "", fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	switch {
	case u.Hostname() == "":
		return "", errors.New("no host")
	case u.User != nil:
		return "", errors.New("must not hold credentials (use access_key)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", errors.New("must not have a #fragment")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// checkAccessKey validates an access key without showing it.
func checkAccessKey(k string) error {
	if n := len(k); n > MaxAccessKeyLength {
		return fmt.Errorf("%d bytes, at most %d", n, MaxAccessKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Errorf("holds a control character at byte %d (not allowed in an HTTP header)", i)
		}
	}
	return nil
}

// readAccessKey reads an access key file. Errors name the file, never its
// content.
func readAccessKey(path string) (Secret, error) {
	k, err := secret.ReadFile("access_key_file", path)
	if err != nil {
		return "", err
	}
	if err := checkAccessKey(string(k)); err != nil {
		return "", fmt.Errorf("access_key_file %s: %w", path, err)
	}
	return k, nil
}

// Format prints the configuration without the access key.
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{url:%s name:%q access_key:%s access_key_file:%q content_encoding:%s common_attributes:%d request_timeout:%v}",
		c.url, c.name, c.accessKey, c.accessKeyFile, c.encoding(), len(c.attrs), c.timeout)
}

// LogValue is the configuration without the access key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.url), slog.String("name", c.name),
		slog.Bool("access_key", c.accessKey != "" || c.accessKeyFile != ""),
		slog.String("content_encoding", c.encoding()),
		slog.Int("common_attributes", len(c.attrs)),
		slog.Duration("request_timeout", c.timeout))
}

func (c Config) encoding() string {
	if c.gzip {
		return EncodingGzip
	}
	return EncodingNone
}
