package s3

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/sluice-dev/sluice/deploy/testpeers"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/pipeline"
)

const testBucket = "sluice-test"

// server is a running S3 server the tests talk to.
type server struct {
	name     string
	endpoint string
	key      string
	secret   string
}

func startGofakes3(t testing.TB, buckets ...string) server {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(ts.Close)
	return server{name: "gofakes3", endpoint: ts.URL, key: "AKIDTEST", secret: "secret"}
}

func startS3rver(t testing.TB, buckets ...string) server {
	t.Helper()
	endpoint, _ := testpeers.StartS3rver(t, buckets...)
	return server{name: "s3rver", endpoint: endpoint, key: testpeers.S3rverAccessKey, secret: testpeers.S3rverSecretKey}
}

// servers returns the peers the tests run against, each started with
// testBucket: s3rver, a real independent S3 server. (gofakes3, an
// in-process fake, is used only where s3rver cannot do it:
// ListMultipartUploads in TestMultipartCancelAborts.)
func servers(t testing.TB) []server {
	return []server{startS3rver(t, testBucket)}
}

// startStoppableS3rver runs s3rver in a subtest that lasts until stop is
// called: testpeers stops s3rver at the end of the test that started it.
// stop must be called before t's test function returns.
func startStoppableS3rver(t *testing.T, buckets ...string) (srv server, stop func()) {
	t.Helper()
	started := make(chan server, 1)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t.Run("s3rver", func(t *testing.T) {
			started <- startS3rver(t, buckets...)
			<-quit
		})
	}()
	select {
	case srv = <-started:
	case <-done:
		t.Fatal("s3rver did not start")
	}
	var once sync.Once
	return srv, func() { once.Do(func() { close(quit); <-done }) }
}

func (s server) options() Options {
	o := DefaultOptions()
	o.Bucket = testBucket
	o.Region = "us-east-1"
	o.Endpoint = s.endpoint
	o.ForcePathStyle = true
	o.AccessKeyID = s.key
	o.SecretAccessKey = s.secret
	return o
}

// client is an independent SDK client that reads back what was stored.
func (s server) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.key, s.secret, ""),
	})
}

// hooks are the test seams of the store (s3store.Config's WrapTransport
// and MaxAttempts).
type hooks struct {
	wrapTransport func(http.RoundTripper) http.RoundTripper
	maxAttempts   int // SDK attempts per request; 0 means 1 in tests
}

func newTestDest(t testing.TB, opts Options, stream string, h hooks) *object.Writer {
	t.Helper()
	if h.maxAttempts == 0 {
		h.maxAttempts = 1
	}
	opts.WrapTransport, opts.MaxAttempts = h.wrapTransport, h.maxAttempts
	cfg, err := Compile(opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	d, err := New(context.Background(), cfg, stream, pipeline.Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// listKeys returns every key of the bucket under prefix.
func listKeys(t testing.TB, c *s3.Client, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list objects: %v", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// getObject reads an object, gunzipping .gz keys.
func getObject(t testing.TB, c *s3.Client, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	var r io.Reader = out.Body
	if strings.HasSuffix(key, ".gz") {
		zr, err := gzip.NewReader(out.Body)
		if err != nil {
			t.Fatalf("%s: not gzip: %v", key, err)
		}
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

// listObjects returns every object of the bucket, raw.
func listObjects(t *testing.T, c *s3.Client) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, key := range listKeys(t, c, "") {
		o, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		data, err := io.ReadAll(o.Body)
		o.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		out[key] = data
	}
	return out
}

// store is the conformance harness's view of the bucket of srv, with the
// store settings of base.
func store(srv server, base Options) destinationtest.ObjectStore {
	c := srv.client()
	return destinationtest.ObjectStore{
		New: func(t *testing.T, o object.Options, stream string) *object.Writer {
			opts := base
			opts.Options = o
			return newTestDest(t, opts, stream, hooks{})
		},
		List: func(t *testing.T) map[string][]byte { return listObjects(t, c) },
		Failures: []destinationtest.Failure{{
			Name: "s3rver-stopped",
			New: func(t *testing.T, stream string) (pipeline.Destination, func()) {
				own, stop := startStoppableS3rver(t, testBucket)
				return newTestDest(t, own.options(), stream, hooks{}), stop
			},
			Retryable: true, Code: s3store.CodeConnectionFailed,
		}, {
			Name: "bucket-deleted",
			New: func(t *testing.T, stream string) (pipeline.Destination, func()) {
				own := startS3rver(t, "conf-gone")
				opts := own.options()
				opts.Bucket = "conf-gone"
				return newTestDest(t, opts, stream, hooks{}), func() {
					if _, err := own.client().DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String("conf-gone")}); err != nil {
						t.Fatalf("delete bucket: %v", err)
					}
				}
			},
			Retryable: false, Code: s3store.CodeNoSuchBucket,
		}},
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Options)
	}{
		{"uncompressed", func(*Options) {}},
		{"gzip-prefix", func(o *Options) { o.Compression = "GZIP"; o.Prefix = "logs/" }},
		{"newline-smallparts", func(o *Options) { o.AppendNewline = true; o.PartSize = s3store.MinPartSize; o.Prefix = "nl/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startS3rver(t, testBucket) // an empty bucket per case
			opts := srv.options()
			tc.modify(&opts)
			destinationtest.Run(t, destinationtest.ObjectHarness(store(srv, opts), opts.Options))
		})
	}
}

var keyRE = regexp.MustCompile(`^(.*?)(\d{4}/\d{2}/\d{2}/\d{2}/)([a-zA-Z0-9_.-]+)-1-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-([0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})(\..*)?$`)

func TestObjectKeyLayout(t *testing.T) {
	srv := startS3rver(t, testBucket)
	paris := time.FixedZone("CET", 3600)
	recs := []pipeline.Record{
		{Data: []byte("b"), Arrived: time.Date(2019, 10, 1, 9, 30, 0, 0, time.UTC)},
		{Data: []byte("a"), Arrived: time.Date(2019, 10, 1, 10, 20, 18, 500e6, paris)},
	}
	b := pipeline.Batch{Stream: "s1", Records: recs, Bytes: 2, ID: pipeline.BatchID{First: 10, End: 90}}
	for i, tc := range []struct {
		prefix, comp, tz, ext                 string
		wantPrefix, wantTime, wantTS, wantExt string
	}{
		{"", "", "", "", "", "2019/10/01/09/", "2019-10-01-09-20-18", ""},
		{"logs", "GZIP", "", "", "logs", "2019/10/01/09/", "2019-10-01-09-20-18", ".gz"},
		{"a/b/", "gzip", "Asia/Tokyo", ".json.gz", "a/b/", "2019/10/01/18/", "2019-10-01-18-20-18", ".json.gz"},
	} {
		opts := srv.options()
		opts.Prefix, opts.Compression, opts.CustomTimeZone, opts.FileExtension = tc.prefix, tc.comp, tc.tz, tc.ext
		opts.ErrorOutputPrefix = "err/"
		d := newTestDest(t, opts, "s1", hooks{})
		if err := d.Deliver(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		want := d.ObjectKeys(b)
		if len(want) != 1 {
			t.Fatalf("ObjectKeys = %v, want one key", want)
		}
		m := keyRE.FindStringSubmatch(want[0])
		if m == nil {
			t.Fatalf("key %q does not have Firehose's layout", want[0])
		}
		if m[1] != tc.wantPrefix || m[2] != tc.wantTime || m[3] != "s1" || m[4] != tc.wantTS || m[6] != tc.wantExt {
			t.Errorf("case %d: key %q: prefix %q time path %q stream %q ts %q ext %q", i, want[0], m[1], m[2], m[3], m[4], m[6])
		}
		if got := getObject(t, srv.client(), want[0]); string(got) != "ba" {
			t.Errorf("case %d: content %q, want %q", i, got, "ba")
		}
	}
	if keys := listKeys(t, srv.client(), ""); len(keys) != 3 {
		t.Errorf("bucket holds %v, want the 3 objects", keys)
	}
}

// recorder records the requests that go through the real transport.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone()})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func TestObjectHeaders(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, tc := range []struct {
				sse, kms, class string
			}{
				{s3store.SSEKMS, "alias/sluice", "STANDARD_IA"},
				{s3store.SSEAES256, "", ""},
				{"", "", ""},
			} {
				opts := srv.options()
				opts.Compression = "GZIP"
				opts.PartSize = s3store.MinPartSize
				opts.SSE = s3store.SSEOptions{Type: tc.sse, KMSKeyID: tc.kms}
				opts.StorageClass = tc.class
				rec := &recorder{}
				d := newTestDest(t, opts, "hdr", hooks{wrapTransport: func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec }})
				small := destinationtest.NewBatch("hdr", 0, time.Now(), []byte("x"))
				// Incompressible and over one part: a multipart upload.
				big := destinationtest.NewBatch("hdr", small.ID.End, time.Now(), randomBytes(s3store.MinPartSize+s3store.MinPartSize/2))
				for _, b := range []pipeline.Batch{small, big} {
					if err := d.Deliver(context.Background(), b); err != nil {
						t.Fatal(err)
					}
				}
				var puts, creates, parts int
				for _, r := range rec.requests() {
					objectCreate := false
					switch {
					case r.method == http.MethodPut && !strings.Contains(r.query, "uploadId"):
						puts++
						objectCreate = true
					case r.method == http.MethodPost && strings.Contains(r.query, "uploads"):
						creates++
						objectCreate = true
					case r.method == http.MethodPut:
						parts++
					}
					if !objectCreate {
						continue
					}
					if got := r.header.Get("X-Amz-Server-Side-Encryption"); got != tc.sse {
						t.Errorf("%s %s: x-amz-server-side-encryption %q, want %q", r.method, r.path, got, tc.sse)
					}
					if got := r.header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tc.kms {
						t.Errorf("%s %s: kms key id %q, want %q", r.method, r.path, got, tc.kms)
					}
					if got := r.header.Get("X-Amz-Storage-Class"); got != tc.class {
						t.Errorf("%s %s: storage class %q, want %q", r.method, r.path, got, tc.class)
					}
					if got := r.header.Get("Content-Encoding"); got != "gzip" {
						t.Errorf("%s %s: content-encoding %q, want gzip", r.method, r.path, got)
					}
				}
				if puts != 1 || creates != 1 || parts != 2 {
					t.Errorf("%d PutObject, %d CreateMultipartUpload, %d UploadPart; want 1, 1, 2", puts, creates, parts)
				}
			}
		})
	}
}
