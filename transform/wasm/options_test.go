package wasm

import (
	"strings"
	"testing"
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
	s, err := o.resolve("/data")
	if err != nil {
		t.Fatal(err)
	}
	if s.batchRecords != DefaultBatchRecords || s.batchBytes != DefaultBatchBytes || s.timeout != DefaultTimeout ||
		s.memoryPages != uint32(DefaultMemoryLimit/pageSize) || s.retries != DefaultRetries || s.instances < 1 ||
		s.cacheDir != "/data/wasm-cache" || s.region != DefaultRegion {
		t.Errorf("defaults: %+v", s)
	}
	zero := 0
	o.Retries, o.CacheDir = &zero, "-"
	o.Env = map[string]string{"B": "2", "A": "1"}
	if s, err = o.resolve("/data"); err != nil || s.retries != 0 || s.cacheDir != "" || strings.Join(s.env, ",") != "A=1,B=2" {
		t.Errorf("retries 0, no cache, env: %+v, %v", s, err)
	}
	o.Env = map[string]string{"A=B": "x"}
	o.Timeout = -1
	o.BatchBytes = MaxBatchBytes + 1
	err = o.Validate()
	for _, w := range []string{"env", "timeout", "batch_bytes"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate: %v, want a problem with %s", err, w)
		}
	}
}
