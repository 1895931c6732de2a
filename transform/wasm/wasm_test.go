package wasm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/transformtest"
)

func TestPassThrough(t *testing.T) {
	for _, unchanged := range []bool{false, true} {
		t.Run(fmt.Sprintf("unchanged=%v", unchanged), func(t *testing.T) {
			opts := testOptions(guestModule(t))
			if unchanged {
				opts.Env = map[string]string{"UNCHANGED": "1"}
			}
			opts.BatchRecords = 7 // several calls per batch
			e := newTestEnv(t, opts)
			data := make([]string, 50)
			for i := range data {
				data[i] = fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i))
			}
			b := batch(data...)
			b.Records[3].Keys = map[string]string{"partitionKeyFromQuery:x": "y"}
			b.Records[4].Meta = map[string]string{"shardId": "shardId-000000000001", "sequenceNumber": "42"}
			res := e.process(t, b)
			for i, r := range res {
				if r.ok == nil {
					t.Fatalf("record %d: not delivered (code %q: %s)", i, r.code, r.msg)
				}
				if string(r.ok.Data) != data[i] || !r.ok.Arrived.Equal(b.Records[i].Arrived) {
					t.Errorf("record %d: data %q arrived %v, want %q %v", i, r.ok.Data, r.ok.Arrived, data[i], b.Records[i].Arrived)
				}
			}
			if res[3].ok.Keys["partitionKeyFromQuery:x"] != "y" {
				t.Errorf("keys set before the transform were lost: %v", res[3].ok.Keys)
			}
			if got := e.counter(t, "records", "s1", ProcessorName, RecordsOK); got != 50 {
				t.Errorf("ok records metric = %v, want 50", got)
			}
			if got := e.counter(t, "calls", "s1", ProcessorName, CallSuccess); got != 8 {
				t.Errorf("calls = %v, want 8 (50 records by 7)", got)
			}
		})
	}
}

func TestResults(t *testing.T) {
	e := newTestEnv(t, testOptions(guestModule(t)))
	b := batch("a", "drop", "fail", "key:year=2024", "upper", "missing", "dup", "b", "key:c=d")
	b.Records[8].Keys = map[string]string{"partitionKeyFromQuery:q": "v"}
	res := e.process(t, b)
	wantOK := map[int]string{0: "a", 3: "key:year=2024", 4: "UPPER", 7: "b", 8: "key:c=d"}
	wantCode := map[int]string{2: CodeProcessingFailedStatus, 5: CodeMissingRecordID, 6: CodeDuplicatedRecordID}
	for i, r := range res {
		switch {
		case wantOK[i] != "":
			if r.ok == nil || string(r.ok.Data) != wantOK[i] {
				t.Errorf("record %d: %+v, want Ok %q", i, r, wantOK[i])
			}
		case wantCode[i] != "":
			if r.code != wantCode[i] {
				t.Errorf("record %d: code %q (%s), want %q", i, r.code, r.msg, wantCode[i])
			}
		default: // dropped
			if r.ok != nil || r.code != "" {
				t.Errorf("record %d: %+v, want dropped", i, r)
			}
		}
	}
	if got := res[2].msg; got != MsgProcessingFailed+": bad record" {
		t.Errorf("ProcessingFailed message %q", got)
	}
	if got := res[3].ok.Keys; len(got) != 1 || got[KeyPrefix+"year"] != "2024" {
		t.Errorf("keys %v, want %syear=2024", got, KeyPrefix)
	}
	if got := res[8].ok.Keys; len(got) != 2 || got[KeyPrefix+"c"] != "d" || got["partitionKeyFromQuery:q"] != "v" {
		t.Errorf("keys %v", got)
	}
	if b.Records[8].Keys[KeyPrefix+"c"] != "" {
		t.Error("the input record's Keys map was modified")
	}
	for result, want := range map[string]float64{RecordsOK: 5, RecordsDropped: 1, RecordsFailed: 3} {
		if got := e.counter(t, "records", "s1", ProcessorName, result); got != want {
			t.Errorf("records{result=%s} = %v, want %v", result, got, want)
		}
	}
}

// failedCall checks that every record of res failed with code and that
// the processor still serves a clean batch afterwards.
func failedCall(t *testing.T, e *testEnv, res []outcome, code string) {
	t.Helper()
	for i, r := range res {
		if r.ok != nil || r.code != code {
			t.Errorf("record %d: ok=%v code %q (%s), want %q", i, r.ok != nil, r.code, r.msg, code)
		}
	}
	again := e.process(t, batch("x", "y"))
	for i, r := range again {
		if r.ok == nil {
			t.Errorf("after the failure, record %d was not delivered: %s %s", i, r.code, r.msg)
		}
	}
}

func TestFaults(t *testing.T) {
	trap := watModule(t, "trap", `(module`+watABI+`
  (func (export "sluice_transform") (param i32 i32) (result i64) unreachable))`)
	loop := watModule(t, "loop", `(module`+watABI+`
  (func (export "sluice_transform") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))`)
	outOfBounds := watModule(t, "oob", `(module`+watABI+`
  (func (export "sluice_transform") (param i32 i32) (result i64) (i64.const 0xfffffff000000100)))`)
	cases := []struct {
		name   string
		module string
		data   string
		code   string
		calls  string
		memory ByteSize
		slow   bool // the failure takes a while: do not mistake it for a timeout
	}{
		{"wat unreachable", trap, "a", CodeFunctionError, CallFunctionError, 0, false},
		{"wat infinite loop", loop, "a", CodeFunctionTimeout, CallTimeout, 0, false},
		{"wat output out of bounds", outOfBounds, "a", CodeJSONProcessing, CallInvalidResponse, 0, false},
		{"go infinite loop", "", "loop", CodeFunctionTimeout, CallTimeout, 0, false},
		{"go panic", "", "panic", CodeFunctionError, CallFunctionError, 0, false},
		{"go nil dereference", "", "trap", CodeFunctionError, CallFunctionError, 0, false},
		{"go memory past the limit", "", "oom", CodeFunctionError, CallFunctionError, 48 << 20, true},
		{"go garbage output", "", "garbage", CodeJSONProcessing, CallInvalidResponse, 0, false},
		{"go reported error", "", "error", CodeFunctionError, CallFunctionError, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			module := c.module
			if module == "" {
				module = guestModule(t)
			}
			opts := testOptions(module)
			opts.Timeout = 200 * time.Millisecond
			if c.slow {
				opts.Timeout = 10 * time.Second
			}
			opts.MemoryLimit = c.memory
			retries := 1
			opts.Retries = &retries
			e := newTestEnv(t, opts)
			start := time.Now()
			res := e.process(t, batch("before", c.data, "after"))
			if elapsed := time.Since(start); elapsed > 8*time.Second {
				t.Errorf("the failing batch took %v", elapsed)
			}
			if c.module != "" {
				// The WAT guests fail every call: check the clean batch
				// fails the same way rather than succeeding.
				for i, r := range res {
					if r.code != c.code {
						t.Errorf("record %d: code %q (%s), want %q", i, r.code, r.msg, c.code)
					}
				}
			} else {
				failedCall(t, e, res, c.code)
			}
			if got := e.counter(t, "calls", "s1", ProcessorName, c.calls); got != 2 {
				t.Errorf("calls{result=%s} = %v, want 2 (1 + 1 retry)", c.calls, got)
			}
			if !strings.Contains(res[0].msg, "2 attempts failed") {
				t.Errorf("message %q does not count the attempts", res[0].msg)
			}
		})
	}
}

func TestFaultIsolatedToItsCall(t *testing.T) {
	opts := testOptions(guestModule(t))
	opts.Timeout = 200 * time.Millisecond
	opts.BatchRecords = 2
	opts.Instances = 2
	retries := 0
	opts.Retries = &retries
	e := newTestEnv(t, opts)
	res := e.process(t, batch("a", "b", "c", "loop", "e", "f"))
	for i, r := range res {
		inFailedCall := i == 2 || i == 3
		if inFailedCall != (r.code == CodeFunctionTimeout) || inFailedCall == (r.ok != nil) {
			t.Errorf("record %d: ok=%v code %q", i, r.ok != nil, r.code)
		}
	}
}

func TestCancel(t *testing.T) {
	opts := testOptions(guestModule(t))
	opts.Timeout = time.Minute
	e := newTestEnv(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := e.p.Process(ctx, batch("loop"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Process with a cancelled context: %v, want the context's error", err)
	}
	e.process(t, batch("a"))
}

func TestSandbox(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("hello from the host"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GREETING_FROM_DAEMON", "leak")

	opts := testOptions(guestModule(t))
	opts.Env = map[string]string{"GREETING": "hi"}
	opts.Config = map[string]any{"table": "clicks", "max": 3}
	e := newTestEnv(t, opts)
	res := e.process(t, batch("env", "file:"+secret))
	if got := string(res[0].ok.Data); got != `hi|{"max":3,"table":"clicks"}` {
		t.Errorf("env and config seen by the guest: %q", got)
	}
	if got := string(res[1].ok.Data); got != "ERR" {
		t.Errorf("the guest read a host file without allow_fs: %q", got)
	}

	opts.AllowFS = []string{dir}
	opts.Config = "plain string"
	e = newTestEnv(t, opts)
	res = e.process(t, batch("env", "file:"+secret))
	if got := string(res[0].ok.Data); got != "hi|plain string" {
		t.Errorf("string config: %q", got)
	}
	if got := string(res[1].ok.Data); got != "hello from the host" {
		t.Errorf("allow_fs: the guest read %q", got)
	}
}

func TestGuestLogs(t *testing.T) {
	e := newTestEnv(t, testOptions(guestModule(t)))
	e.process(t, batch("log:hello from the guest"))
	if log := e.log.String(); !strings.Contains(log, "hello from the guest") || !strings.Contains(log, "stream=stdout") {
		t.Errorf("guest stdout not in the log:\n%s", log)
	}
	e.process(t, batch(repeat("log:spam", 200)...))
	if n := strings.Count(e.log.String(), "msg=spam"); n >= 200 || n == 0 {
		t.Errorf("%d of 200 guest lines logged: not rate-limited", n)
	}
}

func TestNewRejects(t *testing.T) {
	noExports := watModule(t, "noexports", `(module (memory (export "memory") 1))`)
	command := watModule(t, "command", `(module`+watABI+`
  (func (export "_start"))
  (func (export "sluice_transform") (param i32 i32) (result i64) (i64.const 0)))`)
	badImport := watModule(t, "import", `(module (import "env" "f" (func))`+watABI+`
  (func (export "sluice_transform") (param i32 i32) (result i64) (i64.const 0)))`)
	version := watModule(t, "version", `(module (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 2))
  (func (export "sluice_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "sluice_transform") (param i32 i32) (result i64) (i64.const 0)))`)
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{"missing exports", testOptions(noExports), []string{"missing export sluice_abi_version", "missing export sluice_alloc", "missing export sluice_transform"}},
		{"command", testOptions(command), []string{"exports _start"}},
		{"import", testOptions(badImport), []string{"imports env.f"}},
		{"version", testOptions(version), []string{"returned 2"}},
		{"init refused", func() Options { o := testOptions(guestModule(t)); o.Config = "refuse"; return o }(), []string{"sluice_init returned 7"}},
		{"no module", testOptions(""), []string{"module: required"}},
		{"bad options", func() Options {
			o := testOptions(filepath.Join(t.TempDir(), "nope.wasm"))
			r := -1
			o.Retries, o.BatchRecords, o.MemoryLimit, o.AllowFS = &r, -1, 1000, []string{"relative"}
			return o
		}(), []string{"no such file", "retries", "batch_records", "memory_limit", "allow_fs"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.CacheDir = "-"
			comp, err := c.opts.Compile()
			if err == nil {
				_, err = New(comp, pipeline.Deps{})
			} else if keys, other := transformtest.OptionKeys(err); len(keys) == 0 || len(other) > 0 {
				t.Errorf("Compile: option keys %q, other errors %v: want every problem at its key", keys, other)
			}
			if err == nil {
				t.Fatal("Compile and New succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := New(Compiled{}, pipeline.Deps{}); err == nil || !strings.Contains(err.Error(), "not compiled") {
		t.Errorf("New(Compiled{}): %v", err)
	}
}

// cacheFiles lists the compilation cache's files with their size and
// modification time.
func cacheFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > 0 {
			files[path] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestCompilationCache(t *testing.T) {
	dataDir := t.TempDir()
	opts := testOptions(guestModule(t))
	deps := pipeline.Deps{DataDir: dataDir}
	p, err := New(compile(t, opts), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, CacheDirName)
	cold := cacheFiles(t, dir)
	if len(cold) == 0 {
		t.Fatalf("no compiled module under %s", dir)
	}
	// A warm start loads the compiled code: nothing is compiled, so no
	// cache file is written again.
	p, err = New(compile(t, opts), deps)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if warm := cacheFiles(t, dir); !maps.Equal(warm, cold) {
		t.Errorf("the warm start rewrote the cache: %v, then %v", cold, warm)
	}
}

func TestConcurrentProcess(t *testing.T) {
	opts := testOptions(guestModule(t))
	opts.Instances = 3
	opts.BatchRecords = 16
	e := newTestEnv(t, opts)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			data := make([]string, 200)
			for i := range data {
				data[i] = fmt.Sprintf("g%d-%d", g, i)
			}
			data[17], data[150] = "drop", "fail"
			b := batch(data...)
			out, errs, err := e.p.Process(context.Background(), b)
			if err != nil {
				t.Error(err)
				return
			}
			if len(out.Records) != 198 || len(errs) != 1 || errs[0].Index != 150 {
				t.Errorf("goroutine %d: %d out, errors %v", g, len(out.Records), errs)
				return
			}
			for j, r := range out.Records {
				i := j
				if j >= 17 {
					i++
				}
				if j >= 149 {
					i++
				}
				if string(r.Data) != data[i] {
					t.Errorf("goroutine %d: output %d = %q, want %q", g, j, r.Data, data[i])
					return
				}
			}
		})
	}
	wg.Wait()
	if got := e.counter(t, "instances", filepath.Base(opts.Module)); got > 3 {
		t.Errorf("%v instances created for a pool of 3", got)
	}
}

func TestRunModule(t *testing.T) {
	recs := batch("a", "drop", "fail", "key:k=v", "missing").Records
	recs[0].ID = ""
	opts := testOptions(guestModule(t))
	opts.CacheDir = sharedCache(t)
	res, err := RunModule(context.Background(), opts, pipeline.Deps{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{
		{RecordID: "1", Result: ResultOk, Data: []byte("a")},
		{RecordID: "r1", Result: ResultDropped},
		{RecordID: "r2", Result: ResultProcessingFailed, ErrorCode: CodeProcessingFailedStatus, ErrorMessage: MsgProcessingFailed + ": bad record"},
		{RecordID: "r3", Result: ResultOk, Data: []byte("key:k=v"), PartitionKeys: map[string]string{"k": "v"}},
		{RecordID: "r4", Result: ResultProcessingFailed, ErrorCode: CodeMissingRecordID, ErrorMessage: "the module returned no result for this recordId"},
	}
	if got, w := fmt.Sprintf("%+v", res), fmt.Sprintf("%+v", want); got != w {
		t.Errorf("RunModule:\n got %s\nwant %s", got, w)
	}
	if recs[0].ID != "" {
		t.Error("RunModule changed its input")
	}
}
