package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestFaultyFailsChosenOperations(t *testing.T) {
	m := NewMem()
	f := NewFaulty(m)
	if _, err := f.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f.Inject(Fault{Op: OpSync, Name: "*.seg", Skip: 1})
	f.Inject(Fault{Op: OpCreate, Name: "cursor.tmp", Times: 2, Err: syscall.ENOSPC})
	seg, err := f.OpenFile("/d/a.seg", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := seg.Sync(); err != nil {
		t.Fatalf("first sync (skipped): %v", err)
	}
	if err := seg.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second sync: %v, want EIO", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := f.OpenFile("/d/cursor.tmp", os.O_CREATE|os.O_WRONLY, 0o644); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("create %d: %v, want ENOSPC", i, err)
		}
	}
	if _, err := f.OpenFile("/d/cursor.tmp", os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
		t.Fatalf("create after the planned failures: %v", err)
	}
	if n := f.Injected(); n != 3 {
		t.Fatalf("Injected %d, want 3", n)
	}
}

func TestFaultyWriteIsPartial(t *testing.T) {
	m := NewMem()
	f := NewFaulty(m)
	file, err := f.OpenFile("/x", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Inject(Fault{Op: OpWrite})
	n, err := file.WritevAt([][]byte{[]byte("abcd"), []byte("efgh")}, 0)
	if err == nil || n != 4 {
		t.Fatalf("failed write: %d, %v; want 4 bytes and an error", n, err)
	}
	if got, _ := content(t, m, "/x"); got != "abcd" {
		t.Fatalf("after a failed write: %q", got)
	}
}

func TestFaultySyncFailureIsNotReportedTwice(t *testing.T) {
	m := NewMem()
	f := NewFaulty(m)
	file, err := f.OpenFile("/x", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt([]byte("lost"), 0); err != nil {
		t.Fatal(err)
	}
	f.Inject(Fault{Op: OpSync})
	if err := file.Sync(); err == nil {
		t.Fatal("planned sync failure not reported")
	}
	if _, err := file.WriteAt([]byte("more"), 4); err != nil {
		t.Fatal(err)
	}
	if err := file.Sync(); err != nil {
		t.Fatalf("later sync: %v (it succeeds, as on Linux)", err)
	}
	if late := f.WritesAfterFailedSync(); len(late) != 1 || late[0] != "/x" {
		t.Fatalf("WritesAfterFailedSync %v", late)
	}
	s := m.Crash(nil)
	if got, _ := content(t, s, "/x"); got != "" {
		t.Fatalf("data synced after a failed sync survived: %q", got)
	}
}

func TestLockFileOS(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	l, err := LockFile(name, "listen 127.0.0.1:4195")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockFile(name, "second")
	var le *LockedError
	if !errors.As(err, &le) || le.Path != name {
		t.Fatalf("second LockFile: %v, want *LockedError for %s", err, name)
	}
	if want := "pid " + strconv.Itoa(os.Getpid()) + " listen 127.0.0.1:4195"; le.Holder != want || !strings.Contains(err.Error(), want) {
		t.Fatalf("holder %q (%v), want %q", le.Holder, err, want)
	}
	if _, _, err := TryLockExisting(name); !errors.As(err, &le) {
		t.Fatalf("TryLockExisting while locked: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	s, ok, err := TryLockExisting(name)
	if err != nil || !ok {
		t.Fatalf("TryLockExisting after Unlock: %v %v", ok, err)
	}
	_ = s.Unlock()
	if _, ok, err := TryLockExisting(name + ".none"); ok || err != nil {
		t.Fatalf("TryLockExisting of a missing file: %v %v", ok, err)
	}
	l, err = LockFile(name, "")
	if err != nil {
		t.Fatalf("LockFile after Unlock: %v", err)
	}
	_ = l.Unlock()
}
