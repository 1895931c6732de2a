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
	if _, err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
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

func TestMemDirectoriesNeedParentSync(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sync    []string
		survive bool
	}{
		{"no sync", nil, false},
		{"own dir only", []string{"/a/b"}, false},
		{"parent not synced into root", []string{"/a/b", "/a"}, false},
		{"root not the middle", []string{"/a/b", "/"}, false},
		{"every parent", []string{"/a/b", "/a", "/"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			created, err := m.MkdirAll("/a/b", 0o755)
			if err != nil || len(created) != 2 || created[0] != "/a" || created[1] != "/a/b" {
				t.Fatalf("MkdirAll: %v, %v", created, err)
			}
			if again, err := m.MkdirAll("/a/b", 0o755); err != nil || len(again) != 0 {
				t.Fatalf("MkdirAll again: %v, %v", again, err)
			}
			write(t, m, "/a/b/f", "data", true)
			for _, d := range tc.sync {
				if err := m.SyncDir(d); err != nil {
					t.Fatal(err)
				}
			}
			s := m.Crash(nil)
			got, ok := content(t, s, "/a/b/f")
			if ok != tc.survive || ok && got != "data" {
				t.Fatalf("after crash: file present %v (%q), want %v", ok, got, tc.survive)
			}
			if _, err := s.ReadDir("/a/b"); tc.survive && err != nil {
				t.Fatalf("directory after crash: %v", err)
			}
		})
	}
}

func TestMemRenameRevertsWithoutDirSync(t *testing.T) {
	m := NewMem()
	write(t, m, "/cursor", "old", true)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	write(t, m, "/cursor.tmp", "new", true)
	if err := m.Rename("/cursor.tmp", "/cursor"); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, m, "/cursor"); got != "new" {
		t.Fatalf("before the crash: %q", got)
	}
	s := m.Crash(nil)
	if got, ok := content(t, s, "/cursor"); !ok || got != "old" {
		t.Fatalf("unsynced rename: cursor is %q (present %v), want the old entry", got, ok)
	}
	if _, ok := content(t, s, "/cursor.tmp"); ok {
		t.Fatal("unsynced new file survived")
	}

	m = NewMem()
	write(t, m, "/cursor", "old", true)
	write(t, m, "/cursor.tmp", "new", true)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	if err := m.Rename("/cursor.tmp", "/cursor"); err != nil {
		t.Fatal(err)
	}
	s = m.Crash(nil)
	old, _ := content(t, s, "/cursor")
	tmp, _ := content(t, s, "/cursor.tmp")
	if old != "old" || tmp != "new" {
		t.Fatalf("unsynced rename of durable files: cursor %q, cursor.tmp %q; want both as before", old, tmp)
	}
}

func TestMemLock(t *testing.T) {
	m := NewMem()
	u, err := m.Lock("/d/lock", "me")
	if err != nil {
		t.Fatal(err)
	}
	var le *LockedError
	if _, err := m.Lock("/d/lock", "other"); !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	if err := u.Unlock(); err != nil {
		t.Fatal(err)
	}
	u, err = m.Lock("/d/lock", "other")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = u.Unlock()
}
