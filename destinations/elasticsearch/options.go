package elasticsearch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

// Flavors of cluster.
const (
	// FlavorElasticsearch talks to Elasticsearch 7/8 (and anything that
	// answers as it, with the X-Elastic-Product header the client checks).
	FlavorElasticsearch = "elasticsearch"
	// FlavorOpenSearch talks to OpenSearch: the same bulk protocol,
	// without the product check; failed-document records name their
	// fields osDocumentId and osIndexName, as OpenSearch Serverless does.
	FlavorOpenSearch = "opensearch"
)

// Document id formats (Firehose's DefaultDocumentIdFormat).
const (
	// DocumentIDFirehose gives each record an id derived from its
	// identity, the same on every retry and redelivery: documents are
	// created once (a redelivered one gets 409, which is success).
	DocumentIDFirehose = "FIREHOSE_DEFAULT"
	// DocumentIDNone lets the cluster assign ids: a retried or
	// redelivered document is indexed again (at least once).
	DocumentIDNone = "NO_DOCUMENT_ID"
)

// Limits and defaults.
const (
	MaxIndexLength             = 80
	MaxTypeNameLength          = 100
	DefaultMaxBulkDocuments    = 10000
	DefaultMaxBulkBytes        = 10 << 20
	MaxMaxBulkBytes            = 100 << 20
	DefaultRequestTimeout      = time.Minute
	DefaultMaxIdleConnsPerHost = 64
)

// Options configure an Elasticsearch or OpenSearch destination (Firehose's
// AmazonopensearchserviceDestinationConfiguration with a ClusterEndpoint).
type Options struct {
	// Flavor is elasticsearch (default) or opensearch.
	Flavor string `yaml:"flavor"`
	// Addresses are the cluster's nodes (http:// or https:// URLs, a path
	// allowed); the client spreads requests over them.
	Addresses []string `yaml:"addresses"`
	// Username and Password are HTTP basic authentication; Password (or
	// PasswordFile) is a secret, never shown.
	Username     string        `yaml:"username"`
	Password     secret.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	// APIKey (base64 "id:key", as Elasticsearch issues it) or APIKeyFile;
	// BearerToken (a service or bearer token) or BearerTokenFile. At most
	// one way of authenticating.
	APIKey          secret.Secret `yaml:"api_key"`
	APIKeyFile      string        `yaml:"api_key_file"`
	BearerToken     secret.Secret `yaml:"bearer_token"`
	BearerTokenFile string        `yaml:"bearer_token_file"`
	// TLS: a CA bundle that verifies the cluster, and an optional client
	// certificate.
	TLS TLSOptions `yaml:"tls"`
	// Index is the base index name (Firehose's IndexName, at most 80
	// characters); IndexRotation appends the arrival time's suffix.
	Index         string `yaml:"index"`
	IndexRotation string `yaml:"index_rotation"`
	// TypeName is the mapping type, for Elasticsearch 6 only.
	TypeName string `yaml:"type_name"`
	// Pipeline is the ingest pipeline documents go through.
	Pipeline string `yaml:"pipeline"`
	// DocumentID is FIREHOSE_DEFAULT (default) or NO_DOCUMENT_ID.
	DocumentID string `yaml:"document_id"`
	// MaxBulkDocuments and MaxBulkBytes bound one bulk request (the
	// destination's limits: larger batches are sent as several).
	MaxBulkDocuments int `yaml:"max_bulk_documents"`
	MaxBulkBytes     int `yaml:"max_bulk_bytes"`
	// RequestTimeout bounds one bulk request.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Compression gzips request bodies.
	Compression bool `yaml:"compression"`
}

// TLSOptions are the TLS keys.
type TLSOptions struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DefaultOptions returns the defaults a configuration block is decoded
// onto.
func DefaultOptions() Options {
	return Options{Flavor: FlavorElasticsearch, IndexRotation: OneDay, DocumentID: DocumentIDFirehose,
		MaxBulkDocuments: DefaultMaxBulkDocuments, MaxBulkBytes: DefaultMaxBulkBytes, RequestTimeout: DefaultRequestTimeout}
}

// Config is compiled, valid Options: what New builds a destination from.
// It prints without secrets.
type Config struct {
	flavor      string
	addresses   []string
	username    string
	password    secret.Secret
	apiKey      secret.Secret
	bearer      secret.Secret
	files       map[string]string // option key → secret file, read by New
	tls         TLSOptions
	index       string
	rotation    string
	typeName    string
	pipeline    string
	firehoseIDs bool
	maxDocs     int
	maxBytes    int
	timeout     time.Duration
	gzip        bool
}

// Compile validates opts; every problem is a *pipeline.OptionError at its
// key. It does no I/O.
func Compile(o Options) (*Config, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	c := &Config{username: o.Username, password: o.Password, apiKey: o.APIKey, bearer: o.BearerToken,
		files: map[string]string{}, tls: o.TLS, index: o.Index, rotation: o.IndexRotation, typeName: o.TypeName,
		pipeline: o.Pipeline, maxDocs: o.MaxBulkDocuments, maxBytes: o.MaxBulkBytes, timeout: o.RequestTimeout, gzip: o.Compression}
	switch o.Flavor {
	case FlavorElasticsearch, "":
		c.flavor = FlavorElasticsearch
	case FlavorOpenSearch:
		c.flavor = FlavorOpenSearch
	default:
		fail("flavor", "%q is not elasticsearch or opensearch", o.Flavor)
	}
	if len(o.Addresses) == 0 {
		fail("addresses", "required: the cluster's node URLs (https://host:9200)")
	}
	for i, a := range o.Addresses {
		u, err := url.Parse(a)
		switch {
		case err != nil:
			fail(fmt.Sprintf("addresses[%d]", i), "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			fail(fmt.Sprintf("addresses[%d]", i), "scheme %q: want http or https", u.Scheme)
		case u.Host == "":
			fail(fmt.Sprintf("addresses[%d]", i), "no host")
		case u.User != nil:
			fail(fmt.Sprintf("addresses[%d]", i), "must not hold credentials (use username and password)")
		default:
			c.addresses = append(c.addresses, strings.TrimSuffix(a, "/"))
		}
	}
	auth := 0
	for _, s := range []struct {
		key, file, fileKey string
		set                bool
	}{
		{"password", o.PasswordFile, "password_file", o.Password != ""},
		{"api_key", o.APIKeyFile, "api_key_file", o.APIKey != ""},
		{"bearer_token", o.BearerTokenFile, "bearer_token_file", o.BearerToken != ""},
	} {
		if s.set && s.file != "" {
			fail(s.key, "set %s or %s, not both", s.key, s.fileKey)
		}
		if s.file != "" {
			c.files[s.key] = s.file
		}
		if s.set || s.file != "" {
			auth++
		}
	}
	if auth > 1 {
		fail("api_key", "authenticate one way: a password, an API key or a bearer token")
	}
	if (c.password != "" || o.PasswordFile != "") && o.Username == "" {
		fail("username", "a password needs a username")
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		fail("tls.cert_file", "cert_file and key_file go together")
	}
	switch n := utf8.RuneCountInString(o.Index); {
	case o.Index == "":
		fail("index", "required: the base index name")
	case n > MaxIndexLength:
		fail("index", "%d characters, at most %d", n, MaxIndexLength)
	case o.Index != strings.ToLower(o.Index) || strings.ContainsAny(o.Index, `\/*?"<>| ,#:`) || strings.HasPrefix(o.Index, "_") || strings.HasPrefix(o.Index, "-") || strings.HasPrefix(o.Index, "+"):
		fail("index", "%q is not a valid index name (lower case; no \\ / * ? \" < > | space , # :; not starting with _ - +)", o.Index)
	}
	switch o.IndexRotation {
	case NoRotation, OneHour, OneDay, OneWeek, OneMonth:
	case "":
		c.rotation = OneDay
	default:
		fail("index_rotation", "%q is not NoRotation, OneHour, OneDay, OneWeek or OneMonth", o.IndexRotation)
	}
	if n := utf8.RuneCountInString(o.TypeName); n > MaxTypeNameLength {
		fail("type_name", "%d characters, at most %d", n, MaxTypeNameLength)
	}
	switch o.DocumentID {
	case DocumentIDFirehose, "":
		c.firehoseIDs = true
	case DocumentIDNone:
	default:
		fail("document_id", "%q is not FIREHOSE_DEFAULT or NO_DOCUMENT_ID", o.DocumentID)
	}
	if o.MaxBulkDocuments < 1 {
		fail("max_bulk_documents", "%d: at least 1", o.MaxBulkDocuments)
	}
	if o.MaxBulkBytes < 1<<10 || o.MaxBulkBytes > MaxMaxBulkBytes {
		fail("max_bulk_bytes", "%d: between 1024 and %d", o.MaxBulkBytes, MaxMaxBulkBytes)
	}
	if o.RequestTimeout <= 0 {
		fail("request_timeout", "%v: must be positive", o.RequestTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Format prints the configuration without secrets.
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{flavor:%s addresses:%v username:%q password:%s api_key:%s bearer_token:%s index:%s rotation:%s document_id_firehose:%v}",
		c.flavor, c.addresses, c.username, c.password, c.apiKey, c.bearer, c.index, c.rotation, c.firehoseIDs)
}

// LogValue is the configuration without secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("flavor", c.flavor), slog.Any("addresses", c.addresses),
		slog.String("index", c.index), slog.String("rotation", c.rotation))
}
