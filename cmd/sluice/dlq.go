package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline/assemble"
)

// `sluice dlq` works on the dead letters of a configuration's streams, in
// their error outputs (a directory or a bucket), read-only except for
// replay's own state files under <data_dir>/dlq/:
//
//	sluice dlq ls     -c FILE [--stream S]                 what is there, by type and code
//	sluice dlq show   -c FILE --stream S [filters]         each record with its reason and data
//	sluice dlq replay -c FILE --stream S [--to T] ...      put them back through the daemon's API

const dlqUsage = `Usage: sluice dlq <ls|show|replay> -c FILE [flags]

  ls      count the dead letters of every stream (or --stream S) by error output type and code
  show    print the dead letters of --stream S: reason, object, original data
  replay  put the dead letters of --stream S back into S (or --to T) through the running
          daemon, exactly once, resumable

Run 'sluice dlq <command> -h' for its flags.
`

func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	switch args[0] {
	case "ls", "list":
		return cmdDLQList(ctx, args[1:], stdout, stderr)
	case "show":
		return cmdDLQShow(ctx, args[1:], stdout, stderr)
	case "replay":
		return cmdDLQReplay(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, dlqUsage)
		return 0
	}
	fmt.Fprintf(stderr, "sluice dlq: unknown command %q\n\n%s", args[0], dlqUsage)
	return 2
}

// dlqFlags are the flags every dlq command has.
type dlqFlags struct {
	config  *string
	dataDir *string
	stream  *string
}

func newDLQFlags(fs *flag.FlagSet, streamHelp string) dlqFlags {
	return dlqFlags{
		config:  configFlags(fs),
		dataDir: fs.String("data-dir", "", "the daemon's data directory (overrides data_dir): relative error output paths and replay state"),
		stream:  fs.String("stream", "", streamHelp),
	}
}

// load reads the configuration as `sluice run` would, with --data-dir.
func (f dlqFlags) load(name string, stderr io.Writer) (*config.Config, int) {
	if *f.config == "" {
		fmt.Fprintf(stderr, "sluice dlq %s: --config FILE is required\n", name)
		return nil, 2
	}
	cfg, err := config.Load(*f.config)
	if err != nil || cfg == nil {
		printConfigErrors(stderr, err)
		return nil, 1
	}
	if *f.dataDir != "" {
		cfg.DataDir = *f.dataDir
	}
	if *f.stream != "" {
		if _, ok := cfg.Stream(*f.stream); !ok {
			fmt.Fprintf(stderr, "sluice dlq %s: no stream %q in %s\n", name, *f.stream, *f.config)
			return nil, 1
		}
	}
	return cfg, 0
}

// openDeadLetters opens a stream's error output, printing configuration
// errors the way validate does.
func openDeadLetters(ctx context.Context, cfg *config.Config, stream string, stderr io.Writer) (*assemble.DeadLetters, bool) {
	d, err := assemble.OpenDeadLetters(ctx, cfg, stream)
	if err != nil {
		var ce config.Errors
		if errors.As(err, &ce) {
			printConfigErrors(stderr, err)
		} else {
			fmt.Fprintf(stderr, "sluice dlq: %v\n", err)
		}
		return nil, false
	}
	return d, true
}

// eachDeadLetter reads every dead letter of d whose output type is typ
// (any when empty), object after object in key order. Objects that turn
// out not to hold error records, or that vanished since the listing, are
// skipped.
func eachDeadLetter(ctx context.Context, d *assemble.DeadLetters, typ string, fn func(assemble.DeadLetterObject, assemble.DeadLetterRecord) error) error {
	objs, err := d.Candidates(ctx)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if typ != "" && o.OutputType != typ {
			continue
		}
		err := d.Each(ctx, o.Key, func(r assemble.DeadLetterRecord) error { return fn(o, r) })
		if errors.Is(err, assemble.ErrNotDeadLetters) || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dlqGroup is the dead letters of one stream, output type and code.
type dlqGroup struct {
	Stream     string `json:"stream"`
	OutputType string `json:"outputType"`
	ErrorCode  string `json:"errorCode"`
	Records    int    `json:"records"`
	// Replayed counts the records in objects a finished replay run put
	// back (they stay in the error output).
	Replayed int `json:"replayed"`
	Objects  int `json:"objects"`
	// Oldest is the earliest arrivalTimestamp, Newest the latest
	// attemptEndingTimestamp (epoch milliseconds).
	Oldest int64 `json:"oldestArrivalTimestamp"`
	Newest int64 `json:"newestAttemptEndingTimestamp"`

	lastKey string
}

func cmdDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlq ls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := newDLQFlags(fs, "only this stream (default: every stream)")
	asJSON := fs.Bool("json", false, "print one JSON object per stream, type and code")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, code := f.load("ls", stderr)
	if cfg == nil {
		return code
	}
	streams := []string{*f.stream}
	if *f.stream == "" {
		streams = streams[:0]
		for _, s := range cfg.Streams {
			streams = append(streams, s.Name)
		}
	}
	now := time.Now()
	var groups []*dlqGroup
	var notes []string
	for _, stream := range streams {
		d, ok := openDeadLetters(ctx, cfg, stream, stderr)
		if !ok {
			return 1
		}
		st, err := readReplayState(dlqStatePath(cfg.DataDir, stream))
		if err != nil {
			_ = d.Close(ctx)
			return exitCode(err, stderr)
		}
		replayed := st.replayedKeys()
		byKey := map[[2]string]*dlqGroup{}
		var mine []*dlqGroup
		err = eachDeadLetter(ctx, d, "", func(o assemble.DeadLetterObject, r assemble.DeadLetterRecord) error {
			k := [2]string{o.OutputType, r.ErrorCode}
			g := byKey[k]
			if g == nil {
				g = &dlqGroup{Stream: stream, OutputType: o.OutputType, ErrorCode: r.ErrorCode, Oldest: r.ArrivalTimestamp, Newest: r.AttemptEndingTimestamp}
				byKey[k] = g
				mine = append(mine, g)
			}
			g.Records++
			if replayed[o.Key] {
				g.Replayed++
			}
			if g.lastKey != o.Key {
				g.Objects++
				g.lastKey = o.Key
			}
			g.Oldest = min(g.Oldest, r.ArrivalTimestamp)
			g.Newest = max(g.Newest, r.AttemptEndingTimestamp)
			return nil
		})
		where := d.Where()
		_ = d.Close(ctx)
		if err != nil {
			return exitCode(err, stderr)
		}
		slices.SortFunc(mine, func(a, b *dlqGroup) int {
			return strings.Compare(a.OutputType+"\x00"+a.ErrorCode, b.OutputType+"\x00"+b.ErrorCode)
		})
		if len(mine) == 0 {
			notes = append(notes, fmt.Sprintf("%s: no dead letters under %s", stream, where))
		}
		if r := st.Run; r != nil {
			notes = append(notes, fmt.Sprintf("%s: replay run %s into %s unfinished: %d of %d records acknowledged (sluice dlq replay --stream %s resumes it)",
				stream, r.ID, r.To, r.Acked, r.Records, stream))
		}
		groups = append(groups, mine...)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, g := range groups {
			_ = enc.Encode(g)
		}
		return 0
	}
	if len(groups) > 0 {
		rows := [][]string{{"STREAM", "TYPE", "CODE", "RECORDS", "REPLAYED", "OBJECTS", "OLDEST", "NEWEST"}}
		for _, g := range groups {
			rows = append(rows, []string{sanitize(g.Stream, 64), sanitize(g.OutputType, 64), sanitize(g.ErrorCode, 80),
				strconv.Itoa(g.Records), strconv.Itoa(g.Replayed), strconv.Itoa(g.Objects), age(now, g.Oldest), age(now, g.Newest)})
		}
		writeTable(stdout, rows, 3)
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	return 0
}

// writeTable prints rows in columns two spaces apart, the columns from
// index right on aligned to the right (numbers).
func writeTable(w io.Writer, rows [][]string, right int) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i >= right {
				b.WriteString(pad + c)
			} else if i < len(r)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// age renders how long ago an epoch-milliseconds time was, coarsely.
func age(now time.Time, ms int64) string {
	if ms <= 0 {
		return "-"
	}
	d := now.Sub(time.UnixMilli(ms))
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func cmdDLQShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlq show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := newDLQFlags(fs, "the stream whose dead letters to show (required)")
	typ := fs.String("type", "", "only this error output type (processing-failed, delivery-failed, ...)")
	code := fs.String("code", "", "only this error code (e.g. Lambda.ProcessingFailedStatus)")
	limit := fs.Int("limit", 100, "print at most this many records (0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object per record")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *f.stream == "" || *limit < 0 {
		fmt.Fprintln(stderr, "sluice dlq show: --stream is required; --limit >= 0")
		return 2
	}
	cfg, rc := f.load("show", stderr)
	if cfg == nil {
		return rc
	}
	d, ok := openDeadLetters(ctx, cfg, *f.stream, stderr)
	if !ok {
		return 1
	}
	defer d.Close(ctx)
	errLimit := errors.New("limit reached")
	shown, more := 0, false
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	err := eachDeadLetter(ctx, d, *typ, func(o assemble.DeadLetterObject, r assemble.DeadLetterRecord) error {
		if *code != "" && r.ErrorCode != *code {
			return nil
		}
		if *limit > 0 && shown == *limit {
			more = true
			return errLimit
		}
		shown++
		if *asJSON {
			return enc.Encode(showJSON(o, r))
		}
		printDeadLetter(stdout, o, r)
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		return exitCode(err, stderr)
	}
	if !*asJSON {
		switch {
		case more:
			fmt.Fprintf(stdout, "(first %d records shown; --limit 0 shows all)\n", shown)
		case shown == 0:
			fmt.Fprintf(stdout, "no dead letters of %s match under %s\n", *f.stream, d.Where())
		}
	}
	return 0
}

// dlqRecordJSON is show's --json shape of a record.
type dlqRecordJSON struct {
	Object                 string                     `json:"object"`
	Line                   int                        `json:"line"`
	OutputType             string                     `json:"outputType"`
	ErrorCode              string                     `json:"errorCode"`
	ErrorMessage           string                     `json:"errorMessage"`
	AttemptsMade           int                        `json:"attemptsMade"`
	ArrivalTimestamp       int64                      `json:"arrivalTimestamp"`
	AttemptEndingTimestamp int64                      `json:"attemptEndingTimestamp"`
	Fields                 map[string]json.RawMessage `json:"fields,omitempty"`
	// Data is the record as text when it is text, else absent; RawData is
	// always its base64.
	Data    *string `json:"data,omitempty"`
	RawData string  `json:"rawData"`
}

func showJSON(o assemble.DeadLetterObject, r assemble.DeadLetterRecord) dlqRecordJSON {
	out := dlqRecordJSON{
		Object: o.Key, Line: r.Line, OutputType: o.OutputType, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage,
		AttemptsMade: r.AttemptsMade, ArrivalTimestamp: r.ArrivalTimestamp, AttemptEndingTimestamp: r.AttemptEndingTimestamp,
		Fields: r.Fields, RawData: base64.StdEncoding.EncodeToString(r.Data),
	}
	if printable(r.Data) {
		s := string(r.Data)
		out.Data = &s
	}
	return out
}

func printDeadLetter(w io.Writer, o assemble.DeadLetterObject, r assemble.DeadLetterRecord) {
	fmt.Fprintf(w, "%s  %s  attempts %d\n", sanitize(o.OutputType, 128), sanitize(r.ErrorCode, 200), r.AttemptsMade)
	if r.ErrorMessage != "" {
		fmt.Fprintf(w, "  reason:  %s\n", sanitize(r.ErrorMessage, 2000))
	}
	fmt.Fprintf(w, "  arrived: %s   failed: %s\n", msTime(r.ArrivalTimestamp), msTime(r.AttemptEndingTimestamp))
	fmt.Fprintf(w, "  object:  %s (line %d)\n", sanitize(o.Key, 1024), r.Line)
	if len(r.Fields) > 0 {
		keys := make([]string, 0, len(r.Fields))
		for k := range r.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+string(r.Fields[k]))
		}
		fmt.Fprintf(w, "  fields:  %s\n", sanitize(strings.Join(parts, " "), 2000))
	}
	if printable(r.Data) {
		fmt.Fprintf(w, "  data:    %s\n\n", r.Data)
	} else {
		fmt.Fprintf(w, "  data (base64, %d bytes, not text): %s\n\n", len(r.Data), base64.StdEncoding.EncodeToString(r.Data))
	}
}

func msTime(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// printable reports whether b prints as itself: valid UTF-8 without control
// characters (a tab excepted) or bidirectional overrides.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		switch {
		case r == '\t':
		case unicode.IsControl(r), r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return false
		}
	}
	return true
}
