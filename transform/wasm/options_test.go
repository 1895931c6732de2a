package wasm

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/transformtest"
)

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"64MiB": 64 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "100MB": 100e6, "1000kB": 1e6, "65536B": 65536, "4096": 4096, " 2 MiB ": 2 << 20} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("%q: %v, %v; want %v", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "12XB", "99999999999GiB"} {
		var s ByteSize
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q: accepted as %v", in, s)
		}
	}
	if got := ByteSize(64 << 20).String(); got != "64MiB" {
		t.Errorf("String = %q", got)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := DefaultOptions()
	o.Module = "testdata/passthrough.wat" // any existing file
	c, err := o.Compile()
	if err != nil {
		t.Fatal(err)
	}
	s := c.s.resolve(pipeline.Deps{DataDir: "/data"})
	if s.batchRecords != DefaultBatchRecords || s.batchBytes != DefaultBatchBytes || s.timeout != DefaultTimeout ||
		s.memoryPages != uint32(DefaultMemoryLimit/pageSize) || s.retries != DefaultRetries || s.instances < 1 ||
		s.cacheDir != "/data/wasm-cache" || s.region != DefaultRegion {
		t.Errorf("defaults: %+v", s)
	}
	if s := c.s.resolve(pipeline.Deps{Region: "eu-west-3"}); s.region != "eu-west-3" || s.cacheDir != "" {
		t.Errorf("region from deps, no data directory: %+v", s)
	}
	zero := 0
	o.Retries, o.CacheDir, o.Region = &zero, "-", "ap-south-1"
	o.Env = map[string]string{"B": "2", "A": "1"}
	c, err = o.Compile()
	if s := c.s.resolve(pipeline.Deps{DataDir: "/data", Region: "eu-west-3"}); err != nil || s.retries != 0 || s.cacheDir != "" ||
		strings.Join(s.env, ",") != "A=1,B=2" || s.region != "ap-south-1" {
		t.Errorf("retries 0, no cache, env, region: %+v, %v", s, err)
	}
	o.Env = map[string]string{"A=B": "x"}
	o.Timeout = -1
	o.BatchBytes = MaxBatchBytes + 1
	o.AllowFS = []string{"/", "relative"}
	err = o.Validate()
	keys, other := transformtest.OptionKeys(err)
	if want := []string{"batch_bytes", "timeout", "env.A=B", "allow_fs[1]"}; !slices.Equal(keys, want) || len(other) > 0 {
		t.Errorf("Validate: option keys %q, other errors %v, want %q", keys, other, want)
	}
	for _, w := range []string{"env", "timeout", "batch_bytes", "allow_fs"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate: %v, want a problem with %s", err, w)
		}
	}
}
