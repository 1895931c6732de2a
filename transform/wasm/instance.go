package wasm

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Export names of ABI.md §1.
const (
	exportVersion   = "sluice_abi_version"
	exportAlloc     = "sluice_alloc"
	exportTransform = "sluice_transform"
	exportInit      = "sluice_init"
	exportMemory    = "memory"
	wasiModule      = "wasi_snapshot_preview1"
)

// engine is one compiled module and the runtime its instances live in.
type engine struct {
	s        settings
	rt       wazero.Runtime
	cache    wazero.CompilationCache
	compiled wazero.CompiledModule
	name     string // the module's file name, argv[0] and log attribute
	log      *slog.Logger
	lines    *lineLimiter
}

// newEngine compiles the module (through the compilation cache) and
// checks its imports and exports.
func newEngine(ctx context.Context, s settings, log *slog.Logger) (*engine, error) {
	bin, err := os.ReadFile(s.module)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	var cache wazero.CompilationCache
	if s.cacheDir != "" {
		if cache, err = wazero.NewCompilationCacheWithDir(s.cacheDir); err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", s.cacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(s.memoryPages).
		WithCloseOnContextDone(true)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	e := &engine{s: s, rt: rt, cache: cache, name: filepath.Base(s.module), log: log, lines: newLineLimiter(50, time.Second)}
	fail := func(err error) (*engine, error) {
		_ = rt.Close(ctx)
		_ = cache.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(fmt.Errorf("instantiate WASI: %w", err))
	}
	start := time.Now()
	if e.compiled, err = rt.CompileModule(ctx, bin); err != nil {
		return fail(fmt.Errorf("compile %s: %w", s.module, err))
	}
	log.Debug("wasm module compiled", "module", s.module, "duration", time.Since(start))
	if err := checkShape(e.compiled); err != nil {
		return fail(fmt.Errorf("%s: %w", s.module, err))
	}
	return e, nil
}

// close closes the runtime, then the compilation cache, which holds the
// compiled code (on disk, the cache files stay).
func (e *engine) close(ctx context.Context) error {
	return errors.Join(e.rt.Close(ctx), e.cache.Close(ctx))
}

// checkShape verifies the imports and exports ABI.md §1 requires.
func checkShape(m wazero.CompiledModule) error {
	var errs []error
	for _, f := range m.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod != wasiModule {
			errs = append(errs, fmt.Errorf("imports %s.%s: only %s functions are available", mod, name, wasiModule))
		}
	}
	if len(m.ImportedMemories()) > 0 {
		errs = append(errs, errors.New("imports a memory: the module must define and export its own"))
	}
	fns := m.ExportedFunctions()
	if _, ok := fns["_start"]; ok {
		errs = append(errs, errors.New("exports _start: it is a WASI command; build a reactor (Go: -buildmode=c-shared)"))
	}
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want := []struct {
		name    string
		params  []api.ValueType
		results []api.ValueType
		opt     bool
	}{
		{exportVersion, nil, []api.ValueType{i32}, false},
		{exportAlloc, []api.ValueType{i32}, []api.ValueType{i32}, false},
		{exportTransform, []api.ValueType{i32, i32}, []api.ValueType{i64}, false},
		{exportInit, []api.ValueType{i32, i32}, []api.ValueType{i32}, true},
		{"_initialize", nil, nil, true},
	}
	for _, w := range want {
		f, ok := fns[w.name]
		if !ok {
			if !w.opt {
				errs = append(errs, fmt.Errorf("missing export %s", w.name))
			}
			continue
		}
		if !sameTypes(f.ParamTypes(), w.params) || !sameTypes(f.ResultTypes(), w.results) {
			errs = append(errs, fmt.Errorf("export %s has type (%s) -> (%s), want (%s) -> (%s)", w.name,
				typeNames(f.ParamTypes()), typeNames(f.ResultTypes()), typeNames(w.params), typeNames(w.results)))
		}
	}
	if _, ok := m.ExportedMemories()[exportMemory]; !ok {
		errs = append(errs, errors.New("missing export memory"))
	}
	return errors.Join(errs...)
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

// instance is one instantiated module. It is used by one goroutine at a
// time (the pool hands it out).
type instance struct {
	mod       api.Module
	mem       api.Memory
	alloc     api.Function
	transform api.Function
	inPtr     uint32 // the host's input region (ABI.md §3)
	inCap     uint32
	stack     []uint64
	results   []outResult
}

// instantiate creates an instance, runs _initialize, checks the ABI
// version and calls sluice_init. Start-up is bounded by the call timeout.
func (e *engine) instantiate(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, e.s.timeout)
	defer cancel()
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithArgs(e.name).
		WithStdout(&logWriter{e: e, stream: "stdout", level: slog.LevelInfo}).
		WithStderr(&logWriter{e: e, stream: "stderr", level: slog.LevelWarn}).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(crand.Reader)
	for _, kv := range e.s.env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	if len(e.s.allowFS) > 0 {
		fsc := wazero.NewFSConfig()
		for _, d := range e.s.allowFS {
			fsc = fsc.WithReadOnlyDirMount(d, d)
		}
		cfg = cfg.WithFSConfig(fsc)
	}
	mod, err := e.rt.InstantiateModule(ctx, e.compiled, cfg)
	if err != nil {
		return nil, classify(ctx, fmt.Errorf("instantiate: %w", err))
	}
	inst := &instance{
		mod:       mod,
		mem:       mod.Memory(),
		alloc:     mod.ExportedFunction(exportAlloc),
		transform: mod.ExportedFunction(exportTransform),
		stack:     make([]uint64, 2),
	}
	if err := e.setup(ctx, inst); err != nil {
		_ = mod.Close(context.Background())
		return nil, err
	}
	return inst, nil
}

func (e *engine) setup(ctx context.Context, inst *instance) error {
	v, err := inst.mod.ExportedFunction(exportVersion).Call(ctx)
	if err != nil {
		return classify(ctx, fmt.Errorf("%s: %w", exportVersion, err))
	}
	if uint32(v[0]) != ABIVersion {
		return &callError{code: CodeFunctionError, err: fmt.Errorf("%s returned %d: this host implements ABI version %d", exportVersion, uint32(v[0]), ABIVersion)}
	}
	init := inst.mod.ExportedFunction(exportInit)
	if init == nil {
		return nil
	}
	var ptr uint32
	if n := uint32(len(e.s.config)); n > 0 {
		if ptr, err = inst.allocate(ctx, n); err != nil {
			return err
		}
		buf, _ := inst.mem.Read(ptr, n)
		copy(buf, e.s.config)
		inst.inPtr, inst.inCap = ptr, n
	}
	rc, err := init.Call(ctx, uint64(ptr), uint64(len(e.s.config)))
	if err != nil {
		return classify(ctx, fmt.Errorf("%s: %w", exportInit, err))
	}
	if rc := uint32(rc[0]); rc != 0 {
		return &callError{code: CodeFunctionError, err: fmt.Errorf("%s returned %d (see the module's stderr in the log)", exportInit, rc)}
	}
	return nil
}

// allocate calls sluice_alloc(n) and checks the region it returns.
func (inst *instance) allocate(ctx context.Context, n uint32) (uint32, error) {
	inst.stack[0] = uint64(n)
	if err := inst.alloc.CallWithStack(ctx, inst.stack); err != nil {
		return 0, classify(ctx, fmt.Errorf("%s(%d): %w", exportAlloc, n, err))
	}
	ptr := uint32(inst.stack[0])
	if ptr == 0 || uint64(ptr)+uint64(n) > uint64(inst.mem.Size()) {
		return 0, &callError{code: CodeFunctionError, err: fmt.Errorf("%s(%d) returned %#x, not a region of the %d-byte memory", exportAlloc, n, ptr, inst.mem.Size())}
	}
	return ptr, nil
}

// call runs one invocation: it writes the input into the guest, calls
// sluice_transform and decodes the output. The returned results are views
// of guest memory, valid until the next call on inst.
func (inst *instance) call(ctx context.Context, h *callHeader, recs []pipeline.Record) ([]outResult, error) {
	size := inputSize(h, recs)
	if size < 0 {
		return nil, &callError{code: CodeFunctionError, err: errors.New("the input exceeds 4 GiB")}
	}
	n := uint32(size)
	if n > inst.inCap {
		c := uint32(min(uint64(n)+uint64(n)/4, 1<<32-1))
		ptr, err := inst.allocate(ctx, c)
		if err != nil {
			return nil, err
		}
		inst.inPtr, inst.inCap = ptr, c
	}
	buf, ok := inst.mem.Read(inst.inPtr, n)
	if !ok {
		return nil, &callError{code: CodeFunctionError, err: fmt.Errorf("the input region %#x+%d is outside memory", inst.inPtr, n)}
	}
	encodeInput(buf, h, recs)
	inst.stack[0], inst.stack[1] = uint64(inst.inPtr), uint64(n)
	if err := inst.transform.CallWithStack(ctx, inst.stack); err != nil {
		return nil, classify(ctx, fmt.Errorf("%s: %w", exportTransform, err))
	}
	ret := inst.stack[0]
	outPtr, outLen := uint32(ret>>32), uint32(ret)
	out, ok := inst.mem.Read(outPtr, outLen)
	if !ok {
		return nil, &callError{code: CodeJSONProcessing, err: fmt.Errorf("%w: the output region %#x+%d is outside the %d-byte memory", errInvalid, outPtr, outLen, inst.mem.Size())}
	}
	rs, err := decodeOutput(out, inst.results)
	if err != nil {
		var ge *guestError
		if errors.As(err, &ge) {
			return nil, &callError{code: CodeFunctionError, err: err}
		}
		return nil, &callError{code: CodeJSONProcessing, err: err}
	}
	inst.results = rs
	return rs, nil
}

// callError is a failed invocation with its Firehose error code. err is
// the short form written into dead letters; detail, when set, is the
// whole error (with the guest's stack trace) for the log.
type callError struct {
	code   string
	err    error
	detail error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// classify turns an error from a guest call into a callError: a timeout
// of the call's own deadline, or a trap/exit. When the caller's context
// is done, the error is returned as is (not a guest failure).
func classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return &callError{code: CodeFunctionTimeout, err: fmt.Errorf("the call was interrupted: %w", context.DeadlineExceeded)}
		case sys.ExitCodeContextCanceled:
			return ctx.Err()
		}
		return &callError{code: CodeFunctionError, err: err}
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &callError{code: CodeFunctionTimeout, err: fmt.Errorf("the call was interrupted: %w", err)}
	}
	// wazero appends the guest's stack trace after the first line.
	if first, _, ok := strings.Cut(err.Error(), "\n"); ok {
		return &callError{code: CodeFunctionError, err: errors.New(first), detail: err}
	}
	return &callError{code: CodeFunctionError, err: err}
}

// logWriter captures a guest's stdout or stderr into the log, line by
// line, truncating long lines and rate-limiting.
type logWriter struct {
	e      *engine
	stream string
	level  slog.Level
	buf    []byte
}

const maxLogLine = 4 << 10

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != '\n' {
			i++
		}
		w.buf = append(w.buf, p[:min(i, max(0, maxLogLine+1-len(w.buf)))]...)
		if i == len(p) {
			break
		}
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) flush() {
	line := w.buf
	w.buf = w.buf[:0]
	truncated := len(line) > maxLogLine
	if truncated {
		line = line[:maxLogLine]
	}
	ok, suppressed := w.e.lines.allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"module", w.e.name, "stream", w.stream}
	if truncated {
		attrs = append(attrs, "truncated", true)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed_lines", suppressed)
	}
	w.e.log.Log(context.Background(), w.level, string(line), attrs...)
}

// lineLimiter lets n lines through per interval and counts the others.
type lineLimiter struct {
	n     int
	every time.Duration

	mu         sync.Mutex
	start      time.Time
	count      int
	suppressed int
}

func newLineLimiter(n int, every time.Duration) *lineLimiter {
	return &lineLimiter{n: n, every: every}
}

func (l *lineLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.every {
		l.start, l.count = now, 0
	}
	if l.count >= l.n {
		l.suppressed++
		return false, 0
	}
	l.count++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
