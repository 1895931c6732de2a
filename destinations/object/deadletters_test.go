package object_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/pipeline"
)

// writeOne writes a committed object straight through a store.
func writeOne(t *testing.T, root, key, content string) {
	t.Helper()
	st, err := filestore.New(root, "other", nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := st.Create(context.Background(), key, object.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLetterReadBack: for plain prefixes and prefixes with
// expressions, the dead letters a Writer wrote are listed (this stream's
// only, sorted, with their output type), and read back record by record
// with the original bytes, the reasons and the extra fields; data and
// backup objects, another stream's dead letters and a file shaped like a
// dead-letter object but holding data are not listed.
func TestDeadLetterReadBack(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, errorPrefix string
	}{
		{"default", "", ""},
		{"plain", "data/", "failed/"},
		{"expressions", "d/!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"},
		{"type after time, random", "d/!{timestamp:yyyy}/", "!{timestamp:yyyy-MM'x'}/!{firehose:error-output-type}-!{firehose:random-string}/"},
		{"empty root", "", "!{firehose:error-output-type}/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			o := object.Options{Prefix: tc.prefix, ErrorOutputPrefix: tc.errorPrefix, AppendNewline: true}
			w, root := newWriter(t, o, "s")
			t0 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			dl := func(data, code, typ string, fields map[string]string) pipeline.DeadLetter {
				return pipeline.DeadLetter{Record: pipeline.Record{Data: []byte(data), Arrived: t0}, Attempts: 2, Code: code, Message: "m " + data, OutputType: typ, Fields: fields}
			}
			first := []pipeline.DeadLetter{
				dl("a1", "Lambda.ProcessingFailedStatus", pipeline.OutputProcessingFailed, nil),
				dl("\xff\x00bin", "File.InvalidPath", "", nil),
				dl("a2", "Lambda.ProcessingFailedStatus", pipeline.OutputProcessingFailed, map[string]string{"lambdaArn": "arn:x"}),
			}
			if err := w.WriteDeadLetters(ctx, pipeline.BatchID{First: 0, End: 10}, "s", first); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteDeadLetters(ctx, pipeline.BatchID{First: 10, End: 20}, "s", []pipeline.DeadLetter{dl("b1", "X.Y", pipeline.OutputProcessingFailed, nil)}); err != nil {
				t.Fatal(err)
			}
			// Another stream's dead letters in the same store, data and
			// a backup of this stream.
			if err := w.WriteDeadLetters(ctx, pipeline.BatchID{First: 0, End: 10}, "s2", first); err != nil {
				t.Fatal(err)
			}
			b := destinationtest.NewBatch("s", 0, t0, []byte(`{"errorCode":"X","rawData":""}`))
			if err := w.Deliver(ctx, b); err != nil {
				t.Fatal(err)
			}
			if err := w.Backup(ctx, b); err != nil {
				t.Fatal(err)
			}
			cfg, err := object.Compile(o, filestore.Rule)
			if err != nil {
				t.Fatal(err)
			}
			rd, err := filestore.NewReader(root)
			if err != nil {
				t.Fatal(err)
			}
			d, err := object.NewDeadLetters(cfg, rd, "s", root)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := d.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A data-shaped impostor with a dead-letter key, beside the
			// first processing-failed object.
			var pf []object.DeadLetterObject
			for _, ob := range objs {
				if ob.OutputType == pipeline.OutputProcessingFailed {
					pf = append(pf, ob)
				}
			}
			if len(pf) != 2 {
				t.Fatalf("processing-failed objects %+v", objs)
			}
			impostor := pf[0].Key[:strings.LastIndex(pf[0].Key, "/")+1] + "s-1-2024-05-06-07-08-09-00000000-0000-0000-0000-000000000000"
			writeOne(t, root, impostor, "just data\n")
			again, err := d.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cands, err := d.Candidates(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(cands, func(o object.DeadLetterObject) bool { return o.Key == impostor }) {
				t.Fatalf("the impostor %s is not even a candidate: %+v", impostor, cands)
			}
			if !slices.Equal(again, objs) {
				t.Fatalf("the impostor is listed: %+v", again)
			}
			if len(objs) != 3 || !slices.IsSortedFunc(objs, func(a, b object.DeadLetterObject) int { return strings.Compare(a.Key, b.Key) }) {
				t.Fatalf("objects %+v", objs)
			}
			var types []string
			var got []string
			for _, ob := range objs {
				types = append(types, ob.OutputType)
				if !strings.Contains(ob.Key, "/s-1-2024-05-06-07-08-09-") && !strings.HasPrefix(ob.Key, "s-1-") {
					t.Errorf("key %s", ob.Key)
				}
				err := d.Each(ctx, ob.Key, func(r object.DeadLetterRecord) error {
					got = append(got, fmt.Sprintf("%s|%s|%s|%d|%d|%v|%d", ob.OutputType, r.Data, r.ErrorCode, r.AttemptsMade, r.ArrivalTimestamp, string(r.Fields["lambdaArn"]), r.Line))
					if r.ErrorMessage != "m "+strings.ToValidUTF8(string(r.Data), "\uFFFD") || r.AttemptEndingTimestamp == 0 {
						t.Errorf("record %+v", r)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			slices.Sort(types)
			if !slices.Equal(types, []string{"delivery-failed", "processing-failed", "processing-failed"}) {
				t.Errorf("output types %v", types)
			}
			slices.Sort(got)
			ms := t0.UnixMilli()
			want := []string{
				fmt.Sprintf("delivery-failed|\xff\x00bin|File.InvalidPath|2|%d||1", ms),
				fmt.Sprintf("processing-failed|a1|Lambda.ProcessingFailedStatus|2|%d||1", ms),
				fmt.Sprintf("processing-failed|a2|Lambda.ProcessingFailedStatus|2|%d|\"arn:x\"|2", ms),
				fmt.Sprintf("processing-failed|b1|X.Y|2|%d||1", ms),
			}
			if !slices.Equal(got, want) {
				t.Errorf("records\n got %q\nwant %q", got, want)
			}
			if err := d.Each(ctx, impostor, func(object.DeadLetterRecord) error { return nil }); !errors.Is(err, object.ErrNotDeadLetters) {
				t.Errorf("reading the impostor: %v", err)
			}
		})
	}
}

// TestDeadLetterBadLines: a bad line after the first is an error naming
// the object and the line; an error from the callback ends the read.
func TestDeadLetterBadLines(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	cfg, err := object.Compile(object.Options{}, filestore.Rule)
	if err != nil {
		t.Fatal(err)
	}
	key := "errors/processing-failed/2024/01/02/03/s-1-2024-01-02-03-04-05-00000000-0000-0000-0000-000000000001"
	good := `{"attemptsMade":1,"arrivalTimestamp":1,"errorCode":"C","errorMessage":"m","attemptEndingTimestamp":2,"rawData":"YQ=="}`
	writeOne(t, root, key, good+"\n\n"+good+"\n{\"errorCode\":\"C\",\"rawData\":\"!!\"}\n")
	rd, _ := filestore.NewReader(root)
	d, err := object.NewDeadLetters(cfg, rd, "s", root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = d.Each(ctx, key, func(r object.DeadLetterRecord) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), key+" line 4") || errors.Is(err, object.ErrNotDeadLetters) || n != 2 {
		t.Fatalf("after %d records: %v", n, err)
	}
	stop := errors.New("enough")
	if err := d.Each(ctx, key, func(object.DeadLetterRecord) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v", err)
	}
	if objs, err := d.List(ctx); err != nil || len(objs) != 1 || objs[0].OutputType != "processing-failed" {
		t.Fatalf("list %+v %v", objs, err)
	}
	if err := d.Each(ctx, key+"x", func(object.DeadLetterRecord) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing object: %v", err)
	}
}

func TestDeadLetterParseErrorRecord(t *testing.T) {
	r, err := object.ParseErrorRecord([]byte(`{"attemptsMade":3,"arrivalTimestamp":5,"errorCode":"Lambda.X","errorMessage":"e","attemptEndingTimestamp":6,"lambdaArn":"arn:aws:lambda:x","processor":{"a":1},"rawData":"aGk="}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Data) != "hi" || r.ErrorCode != "Lambda.X" || r.AttemptsMade != 3 || r.ArrivalTimestamp != 5 || r.AttemptEndingTimestamp != 6 ||
		string(r.Fields["lambdaArn"]) != `"arn:aws:lambda:x"` || string(r.Fields["processor"]) != `{"a":1}` || len(r.Fields) != 2 {
		t.Fatalf("%+v", r)
	}
	for _, bad := range []string{
		`{"errorCode":"C"}`,
		`{"rawData":"YQ=="}`,
		`{"errorCode":"","rawData":"YQ=="}`,
		`{"errorCode":"C","rawData":null}`,
		`{"errorCode":"C","rawData":"%%%"}`,
		`{"errorCode":3,"rawData":""}`,
		`["errorCode"]`,
		`hello`,
	} {
		if _, err := object.ParseErrorRecord([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if r, err := object.ParseErrorRecord([]byte(`{"errorCode":"C","rawData":""}`)); err != nil || len(r.Data) != 0 {
		t.Errorf("empty record: %+v %v", r, err)
	}
}

// TestDeadLetterFileReaderList: the local reader lists regular files under
// a prefix (also one ending inside a name) in byte order of their keys,
// skips temporary files and hidden directories, and lists nothing under a
// missing directory.
func TestDeadLetterFileReaderList(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, k := range []string{"a/b", "a.x", "a/c/d", "b/e", "a/.f.123.tmp", "a/.hidden/g"} {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := filestore.NewReader(root)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(prefix string) []string {
		t.Helper()
		infos, err := rd.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range infos {
			out = append(out, in.Key)
			if in.Size != int64(len(in.Key)) {
				t.Errorf("%s: size %d", in.Key, in.Size)
			}
		}
		return out
	}
	for prefix, want := range map[string][]string{
		"":       {"a.x", "a/b", "a/c/d", "b/e"},
		"a":      {"a.x", "a/b", "a/c/d"},
		"a/":     {"a/b", "a/c/d"},
		"a/c":    {"a/c/d"},
		"b/e":    {"b/e"},
		"nope/":  nil,
		"a/nope": nil,
	} {
		if got := keys(prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	rc, err := rd.Open(ctx, "a/c/d")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(rc)
	rc.Close()
	if buf.String() != "a/c/d" {
		t.Fatalf("read %q", buf.String())
	}
	for _, bad := range []string{"../x", "/abs", "a/../../x"} {
		if _, err := rd.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
	}
	if _, err := rd.List(ctx, "../"); err == nil {
		t.Error("List(../) accepted")
	}
	missing, _ := filestore.NewReader(filepath.Join(root, "none"))
	if infos, err := missing.List(ctx, "errors/"); err != nil || len(infos) != 0 {
		t.Fatalf("missing root: %v %v", infos, err)
	}
	if _, err := os.Stat(filepath.Join(root, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the reader created its root")
	}
}
