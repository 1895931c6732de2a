package httpendpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
	"github.com/sluice-dev/sluice/pipeline"
)

func TestCompileDefaults(t *testing.T) {
	o := DefaultOptions()
	o.URL = "https://example.com/ingest?x=1"
	c, err := Compile(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.hostPort != "example.com:443" || c.timeout != DefaultRequestTimeout || c.gzip || c.attrsHeader != "" {
		t.Fatalf("compiled %+v", c)
	}
	o.URL = "http://[::1]:8080/"
	o.RequestTimeout = 0
	if c, err = Compile(o); err != nil || c.hostPort != "[::1]:8080" || c.timeout != DefaultRequestTimeout {
		t.Fatalf("Compile(%+v) = %+v, %v", o, c, err)
	}
}

func TestCompileErrors(t *testing.T) {
	attrs := map[string]string{}
	for i := range MaxCommonAttributes + 1 {
		attrs[fmt.Sprint("k", i)] = "v"
	}
	cases := []struct {
		name string
		edit func(*Options)
		keys []string
	}{
		{"no url", func(o *Options) { o.URL = "" }, []string{"url"}},
		{"ftp", func(o *Options) { o.URL = "ftp://example.com/" }, []string{"url"}},
		{"no host", func(o *Options) { o.URL = "https:///x" }, []string{"url"}},
		{"credentials", func(o *Options) { o.URL = "https://u:p@example.com/" }, []string{"url"}},
		{"fragment", func(o *Options) { o.URL = "https://example.com/#f" }, []string{"url"}},
		{"long url", func(o *Options) { o.URL = "https://example.com/" + strings.Repeat("a", MaxURLLength) }, []string{"url"}},
		{"long name", func(o *Options) { o.Name = strings.Repeat("n", MaxNameLength+1) }, []string{"name"}},
		{"blank name", func(o *Options) { o.Name = "  " }, []string{"name"}},
		{"both keys", func(o *Options) { o.AccessKey, o.AccessKeyFile = "k", "/f" }, []string{"access_key"}},
		{"long key", func(o *Options) { o.AccessKey = Secret(strings.Repeat("k", MaxAccessKeyLength+1)) }, []string{"access_key"}},
		{"newline in key", func(o *Options) { o.AccessKey = "a\nb" }, []string{"access_key"}},
		{"encoding", func(o *Options) { o.ContentEncoding = "BROTLI" }, []string{"content_encoding"}},
		{"too many attributes", func(o *Options) { o.CommonAttributes = attrs }, []string{"common_attributes"}},
		{"blank attribute name", func(o *Options) { o.CommonAttributes = map[string]string{" ": "v"} }, []string{"common_attributes"}},
		{"long attribute", func(o *Options) {
			o.CommonAttributes = map[string]string{strings.Repeat("n", 257): "v", "ok": strings.Repeat("v", 1025)}
		}, []string{"common_attributes", "common_attributes.ok"}},
		{"negative timeout", func(o *Options) { o.RequestTimeout = -time.Second }, []string{"request_timeout"}},
		{"everything at once", func(o *Options) {
			o.URL, o.Name, o.ContentEncoding, o.RequestTimeout = "", " ", "x", -1
		}, []string{"url", "name", "content_encoding", "request_timeout"}},
	}
	for _, c := range cases {
		o := DefaultOptions()
		o.URL = "https://example.com/"
		c.edit(&o)
		cfg, err := Compile(o)
		if err == nil || cfg != nil {
			t.Errorf("%s: Compile = %v, %v; want an error", c.name, cfg, err)
			continue
		}
		if got := optionKeys(t, err); !slices.Equal(got, c.keys) {
			t.Errorf("%s: keys %q, want %q (%v)", c.name, got, c.keys, err)
		}
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepts what Compile rejects", c.name)
		}
	}
}

// TestOptionKeysAreYAMLTags keeps the keys reported by Compile true to the
// option struct.
func TestOptionKeysAreYAMLTags(t *testing.T) {
	var tags []string
	rt := reflect.TypeFor[Options]()
	for i := range rt.NumField() {
		tags = append(tags, strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0])
	}
	for _, k := range []string{"url", "name", "access_key", "access_key_file", "content_encoding", "common_attributes", "request_timeout"} {
		if !slices.Contains(tags, k) {
			t.Errorf("key %s is not an option", k)
		}
	}
	if len(tags) != 7 {
		t.Errorf("options %v: a key was added without a test", tags)
	}
}

func TestAccessKeyFile(t *testing.T) {
	r := startReceiver(t, receiver.Config{AccessKey: "from-a-file"})
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("  from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := opts(r)
	o.AccessKeyFile = path
	d := newDest(t, o, "s", nil)
	if err := deliver(t, d, batch("s", 0, "x")); err != nil {
		t.Fatalf("with the key from the file: %v", err)
	}
	for name, content := range map[string]string{"missing": "", "empty": "\n", "bad": "a\x01b"} {
		p := filepath.Join(t.TempDir(), name)
		if name != "missing" {
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		o.AccessKeyFile = p
		cfg, err := Compile(o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(context.Background(), cfg, "s", pipeline.Deps{})
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s key file: New = %v, want an error naming %s", name, err, p)
		}
	}
}

// TestSecretsNeverShown: the access key appears in no error, log line,
// printed or marshalled options or configuration, nor in Describe.
func TestSecretsNeverShown(t *testing.T) {
	const key = "sup3r-s3cret-k3y"
	r := startReceiver(t, receiver.Config{AccessKey: key})
	var logs bytes.Buffer
	o := opts(r)
	o.AccessKey = key
	o.Name = "endpoint"
	d := newDest(t, o, "s", &logs)

	var shown []string
	for _, b := range []receiver.Behaviour{
		{Answer: receiver.Fail, Status: 500}, {Answer: receiver.Fail, Status: 413}, {Answer: receiver.Redirect},
		{Answer: receiver.MismatchedID}, {Answer: receiver.NotJSON}, {Answer: receiver.Hangup}, {},
	} {
		r.SetBehaviour(b)
		if err := deliver(t, d, batch("s", 0, "x")); err != nil {
			shown = append(shown, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		}
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, d, batch("s", 0, "x")); err != nil {
		shown = append(shown, err.Error())
	}
	if err := d.Ready(context.Background()); err != nil {
		shown = append(shown, err.Error())
	}
	cfg, _ := Compile(o)
	bad := o
	bad.AccessKey = key + "\n"
	bad.AccessKeyFile = "/nonexistent"
	_, cerr := Compile(bad)
	bad.AccessKey = key + "\x01"
	bad.AccessKeyFile = ""
	_, cerr2 := Compile(bad)
	js, _ := json.Marshal(o)
	desc, _ := json.Marshal(d.Describe(pipeline.DescribeInput{}))
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("options", "opts", o, "cfg", cfg, "key", o.AccessKey)
	slog.New(slog.NewJSONHandler(&text, nil)).Info("options", "opts", o, "cfg", cfg, "key", o.AccessKey)
	shown = append(shown, logs.String(), cerr.Error(), cerr2.Error(), string(js), string(desc), text.String(),
		fmt.Sprintf("%v %+v %#v %s %d %x %q", o, o, o, o.AccessKey, o.AccessKey, o.AccessKey, o.AccessKey),
		fmt.Sprintf("%v %+v %#v %s", cfg, cfg, *cfg, cfg), fmt.Sprint(d), fmt.Sprintf("%+v", d))
	for _, s := range shown {
		if strings.Contains(s, key) {
			t.Fatalf("the access key is shown in %q", s)
		}
	}
	if !strings.Contains(logs.String(), "delivery attempt failed") {
		t.Fatal("no debug log of the failures: the check above saw nothing")
	}
	if !strings.Contains(fmt.Sprint(o), "[redacted]") {
		t.Fatalf("printed options %v do not say the key is set", o)
	}
}

func TestDescribe(t *testing.T) {
	o := DefaultOptions()
	o.URL = "https://example.com/ingest"
	o.Name = "Example"
	o.AccessKey = "k"
	o.ContentEncoding = "GZIP"
	o.CommonAttributes = map[string]string{"team": "data", "env": "prod"}
	d := newDest(t, o, "s", nil)
	in := pipeline.DescribeInput{
		Stream: "s", StreamARN: "arn:aws:firehose:eu-west-3:123456789012:deliverystream/s",
		RoleARN: "arn:aws:iam::123456789012:role/sluice", BufferingSizeMiB: 5, BufferingIntervalSeconds: 60,
		RetryDurationSeconds: 300, BackupMode: pipeline.BackupFailedDataOnly,
		Backup: map[string]any{"BucketARN": "arn:aws:s3:::errors"},
	}
	desc := d.Describe(in)
	if len(desc) != 1 || desc[DescriptionKey] == nil {
		t.Fatalf("Describe = %v, want only %s", desc, DescriptionKey)
	}
	got, err := json.Marshal(desc[DescriptionKey])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"EndpointConfiguration":{"Url":"https://example.com/ingest","Name":"Example"},` +
		`"BufferingHints":{"SizeInMBs":5,"IntervalInSeconds":60},"CloudWatchLoggingOptions":{"Enabled":false},` +
		`"RequestConfiguration":{"ContentEncoding":"GZIP","CommonAttributes":[{"AttributeName":"env","AttributeValue":"prod"},{"AttributeName":"team","AttributeValue":"data"}]},` +
		`"RoleARN":"arn:aws:iam::123456789012:role/sluice","RetryOptions":{"DurationInSeconds":300},` +
		`"S3BackupMode":"FailedDataOnly","S3DestinationDescription":{"BucketARN":"arn:aws:s3:::errors"}}`
	if string(got) != want {
		t.Fatalf("Describe JSON\n got %s\nwant %s", got, want)
	}
	// Every member is one of the SDK's HttpEndpointDestinationDescription.
	var sdk types.HttpEndpointDestinationDescription
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sdk); err != nil {
		t.Fatalf("not an HttpEndpointDestinationDescription: %v", err)
	}
	if *sdk.EndpointConfiguration.Url != o.URL || *sdk.BufferingHints.SizeInMBs != 5 || sdk.RequestConfiguration.ContentEncoding != types.ContentEncodingGzip ||
		*sdk.RequestConfiguration.CommonAttributes[1].AttributeName != "team" || *sdk.RetryOptions.DurationInSeconds != 300 ||
		sdk.S3BackupMode != types.HttpEndpointS3BackupModeFailedDataOnly || *sdk.CloudWatchLoggingOptions.Enabled {
		t.Fatalf("decoded %+v", sdk)
	}
	// Without name, attributes, role or error output.
	plain := newDest(t, opts(startReceiver(t, receiver.Config{})), "s", nil)
	got, _ = json.Marshal(plain.Describe(pipeline.DescribeInput{BufferingSizeMiB: 1})[DescriptionKey])
	if strings.Contains(string(got), "Name") || strings.Contains(string(got), "CommonAttributes") || strings.Contains(string(got), "S3") ||
		!strings.Contains(string(got), `"ContentEncoding":"NONE"`) {
		t.Fatalf("plain Describe %s", got)
	}
}
