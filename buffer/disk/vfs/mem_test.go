package vfs

import (
	"errors"
	"os"
	"testing"
)

func write(t *testing.T, m *Mem, name, data string, sync bool) File {
	t.Helper()
	f, err := m.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	if _, err := f.WriteAt([]byte(data), size); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func content(t *testing.T, m *Mem, name string) (string, bool) {
	t.Helper()
	d, ok := m.Files()[name]
	return string(d), ok
}

func TestMemStrictness(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, m, "/d/synced", "a", true)
	write(t, m, "/d/unsynced-entry", "b", true) // data synced, entry not
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	write(t, m, "/d/synced", "-more", false) // data not synced
	write(t, m, "/d/unsynced-entry2", "c", true)
	write(t, m, "/d/tmp", "new", true)
	if err := m.Rename("/d/tmp", "/d/synced2"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/d/unsynced-entry"); err != nil {
		t.Fatal(err)
	}
	s := m.Crash(nil)
	if got, _ := content(t, s, "/d/synced"); got != "a" {
		t.Fatalf("unsynced data survived: %q", got)
	}
	if _, ok := content(t, s, "/d/unsynced-entry2"); ok {
		t.Fatal("file created without directory sync survived")
	}
	if _, ok := content(t, s, "/d/synced2"); ok {
		t.Fatal("rename without directory sync survived")
	}
	if got, ok := content(t, s, "/d/unsynced-entry"); !ok || got != "b" {
		t.Fatal("remove without directory sync took effect")
	}
	if _, err := m.ReadDir("/d"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("crashed filesystem still usable: %v", err)
	}
}

func TestMemCrashAfter(t *testing.T) {
	m := NewMem()
	f := write(t, m, "/f", "x", true)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	m.CrashAfter(2, nil)
	if _, err := f.WriteAt([]byte("y"), 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, ErrCrashed) {
		t.Fatalf("second operation: %v, want ErrCrashed", err)
	}
	s := m.Snapshot()
	if s == nil {
		t.Fatal("no snapshot after crash")
	}
	if got, _ := content(t, s, "/f"); got != "x" {
		t.Fatalf("after crash: %q", got)
	}
}
