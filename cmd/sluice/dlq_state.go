package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A replay's bookkeeping is one JSON file per source stream,
// <data_dir>/dlq/<stream>.json, replaced atomically (temporary file,
// fsync, rename, directory fsync) after every acknowledged batch:
//
//   - replayed: the dead-letter objects fully replayed, never replayed
//     again;
//   - run: the replay in progress, if any: its id (sent as
//     X-Sluice-Replay-Id), target stream, type filter, the objects it
//     replays in order with their record counts (fixed when the run
//     starts: every dead-letter object of the type not replayed yet,
//     sorted by key), and how many of its records are acknowledged.
//
// Record n of a run is the n-th record of its objects in that order; a
// batch's X-Sluice-Replay-Seq is its first record's number. A replay
// killed anywhere resumes its run from the acknowledged count: what it
// sent but did not record, the daemon has, and skips.

const dlqStateVersion = 1

type replayState struct {
	Version  int              `json:"version"`
	Stream   string           `json:"stream"`
	Replayed []replayedObject `json:"replayed"`
	Run      *replayRun       `json:"run,omitempty"`
}

type replayedObject struct {
	Key     string    `json:"key"`
	Records int       `json:"records"`
	Run     string    `json:"run"`
	To      string    `json:"to"`
	At      time.Time `json:"at"`
}

type replayRun struct {
	ID      string      `json:"id"`
	To      string      `json:"to"`
	Type    string      `json:"type,omitempty"` // "" for every type
	Started time.Time   `json:"started"`
	Objects []runObject `json:"objects"`
	// Records is the run's total; Acked the records acknowledged by the
	// daemon, the prefix [0, Acked) of the run's numbers.
	Records int `json:"records"`
	Acked   int `json:"acked"`
	// Stored and Skipped count the acknowledged records the daemon stored
	// and skipped as already stored, over every attempt at the run.
	Stored  int `json:"stored"`
	Skipped int `json:"skipped"`
}

type runObject struct {
	Key     string `json:"key"`
	Type    string `json:"type"`
	Records int    `json:"records"`
}

func dlqStatePath(dataDir, stream string) string {
	return filepath.Join(dataDir, "dlq", stream+".json")
}

// readReplayState reads a state file; a missing one is an empty state.
func readReplayState(path string) (*replayState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &replayState{Version: dlqStateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replay state: %w", err)
	}
	var st replayState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("replay state %s: %w", path, err)
	}
	if st.Version != dlqStateVersion {
		return nil, fmt.Errorf("replay state %s: version %d, this sluice reads version %d", path, st.Version, dlqStateVersion)
	}
	if r := st.Run; r != nil {
		total := 0
		for _, o := range r.Objects {
			total += o.Records
		}
		if r.ID == "" || total != r.Records || r.Acked < 0 || r.Acked > r.Records {
			return nil, fmt.Errorf("replay state %s: inconsistent run %q (%d records, %d in its objects, %d acknowledged)", path, r.ID, r.Records, total, r.Acked)
		}
	}
	return &st, nil
}

func (st *replayState) replayedKeys() map[string]bool {
	m := make(map[string]bool, len(st.Replayed))
	for _, o := range st.Replayed {
		m[o.Key] = true
	}
	return m
}

// write replaces the state file atomically and durably.
func (st *replayState) write(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("replay state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("replay state: fsync %s: %w", dir, err)
	}
	return nil
}

// newRunID is 16 random hexadecimal characters.
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
