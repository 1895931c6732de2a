package filestore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      string
		retryable bool
	}{
		{&fs.PathError{Op: "write", Path: "p", Err: syscall.ENOSPC}, "File.NoSpace", true},
		{&fs.PathError{Op: "write", Path: "p", Err: syscall.EIO}, "File.IOError", true},
		{&fs.PathError{Op: "mkdir", Path: "p", Err: errNotDir}, "File.InvalidPath", false},
		{&fs.PathError{Op: "open", Path: "p", Err: fs.ErrPermission}, "File.AccessDenied", false},
		{errors.New("something else"), "File.WriteFailed", true},
	} {
		err := classify("op", "p", tc.err)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != tc.code || pipeline.IsRetryable(err) != tc.retryable {
			t.Errorf("classify(%v) = %v, want code %s retryable %v", tc.err, err, tc.code, tc.retryable)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("classify(%v) lost the cause", tc.err)
		}
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir(), "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCommitAndAbort: nothing is visible before Commit, an aborted object
// leaves nothing behind, a committed one replaces the previous content.
func TestCommitAndAbort(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	write := func(key, data string) object.Object {
		o, err := s.Create(ctx, key, object.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
		return o
	}
	entries := func() []string {
		var names []string
		_ = filepath.WalkDir(s.Root(), func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(s.Root(), p)
				names = append(names, filepath.ToSlash(rel))
			}
			return err
		})
		return names
	}
	o := write("a/b/obj", "one")
	if _, err := os.Stat(filepath.Join(s.Root(), "a", "b", "obj")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("object visible before Commit (%v)", err)
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	o.Abort() // after Commit: nothing
	if got, _ := os.ReadFile(filepath.Join(s.Root(), "a", "b", "obj")); string(got) != "one" {
		t.Fatalf("content %q", got)
	}
	aborted := write("a/b/obj", "two")
	aborted.Abort()
	aborted.Abort()
	if err := aborted.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if got := entries(); len(got) != 1 || got[0] != "a/b/obj" {
		t.Fatalf("files after abort: %v", got)
	}
	if got, _ := os.ReadFile(filepath.Join(s.Root(), "a", "b", "obj")); string(got) != "one" {
		t.Fatalf("content after an aborted rewrite %q", got)
	}
	// The directory removed under the store is created again.
	if err := os.RemoveAll(filepath.Join(s.Root(), "a")); err != nil {
		t.Fatal(err)
	}
	if err := write("a/b/obj", "three").Commit(); err != nil {
		t.Fatalf("Commit after the directory was removed: %v", err)
	}
	for _, bad := range []string{"", "/abs", "a/../../x", "a/", "a\\b"} {
		if _, err := s.Create(ctx, bad, object.Meta{}); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		} else if c := pipeline.IsRetryable(err); c {
			t.Errorf("Create(%q) = %v, retryable", bad, err)
		}
	}
}

// TestReady: a directory is ready; a root replaced by a regular file is
// not, and writing there fails permanently with File.InvalidPath.
func TestReady(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := os.RemoveAll(s.Root()); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err == nil {
		t.Error("Ready with the root removed")
	}
	if err := os.WriteFile(s.Root(), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Ready(ctx)
	var fe *Error
	if err == nil || !errors.As(err, &fe) || fe.Code != CodeInvalidPath {
		t.Errorf("Ready with a file as root = %v, want File.InvalidPath", err)
	}
	_, err = s.Create(ctx, "x/obj", object.Meta{})
	if err == nil || pipeline.IsRetryable(err) || !errors.As(err, &fe) || fe.Code != CodeInvalidPath {
		t.Errorf("Create under a file = %v, want a permanent File.InvalidPath", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Ready(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Ready with a cancelled context = %v", err)
	}
}

func TestNewRefusesRelativeRoot(t *testing.T) {
	if _, err := New("relative", "s", nil); err == nil {
		t.Error("New accepted a relative root")
	}
	if _, err := New(t.TempDir(), "bad/name", nil); err == nil {
		t.Error("New accepted stream name bad/name")
	}
}
