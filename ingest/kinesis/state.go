package kinesis

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// shardsFile is what a source on its own (no fleet) keeps of its shards
// besides the sequence numbers, which live with the records in the buffer:
// where each shard it has seen starts, and which are read to their end.
// It is small and changes only when shards appear or end.
//
// The starting position applies to the shards found at the source's first
// start; a shard found later was created by a split or merge after the
// source began, so all of it is new and it is read from TRIM_HORIZON (the
// Kinesis Client Library's rule). A LATEST start is kept as the time of the
// first start: a shard that has no record buffered yet is read again
// AT_TIMESTAMP of it, so a restart before its first record neither skips
// records put meanwhile nor re-reads older ones.
type shardsFile struct {
	Version int                   `json:"version"`
	Started time.Time             `json:"started"`
	Shards  map[string]shardState `json:"shards"`
}

type shardState struct {
	// Start is where the shard is read from when no record of it is
	// buffered: TRIM_HORIZON or AT_TIMESTAMP (with Timestamp).
	Start     types.ShardIteratorType `json:"start"`
	Timestamp time.Time               `json:"timestamp,omitzero"`
	// Finished: read to its end (its children may be read).
	Finished bool `json:"finished,omitempty"`
}

func (s shardState) start() Start {
	return Start{Position: s.Start, Timestamp: s.Timestamp}
}

const shardsFileName = "shards.json"

// loadShards reads dir's shards file; a missing one is (nil, nil).
func loadShards(dir string) (*shardsFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, shardsFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kinesis source state: %w", err)
	}
	var f shardsFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.Shards == nil {
		return nil, fmt.Errorf("kinesis source state %s: unreadable (version %d): %v", filepath.Join(dir, shardsFileName), f.Version, err)
	}
	return &f, nil
}

// save replaces dir's shards file atomically and durably.
func (f *shardsFile) save(dir string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("kinesis source state: %w", err)
	}
	if err := writeFileAtomic(dir, shardsFileName, b); err != nil {
		return fmt.Errorf("kinesis source state: %w", err)
	}
	return nil
}

// writeFileAtomic writes name in dir through a temporary file, fsync,
// rename and a sync of the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// The new directory's entry is durable once its parent is synced.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sourceFile names the Kinesis stream a delivery stream's buffer holds
// the positions of: shard ids repeat across streams (shardId-000000000000
// is in every one), so positions read from another stream would resume
// at a foreign sequence number.
type sourceFile struct {
	Version int    `json:"version"`
	Stream  string `json:"kinesis_stream"`
	// Started is when the delivery stream first read it (Firehose's
	// DeliveryStartTimestamp).
	Started time.Time `json:"started"`
}

const sourceFileName = "source.json"

// Bind records in dir that the source reads stream (a name or an ARN,
// compared by name), or checks that it is the one recorded: reading
// another stream over the same buffer is refused with an error saying
// what to do. It returns when the delivery stream first read it.
func Bind(dir, stream string) (time.Time, error) {
	name := streamNameOf(stream)
	path := filepath.Join(dir, sourceFileName)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f := sourceFile{Version: 1, Stream: name, Started: time.Now().UTC()}
		out, _ := json.Marshal(f)
		if err := writeFileAtomic(dir, sourceFileName, out); err != nil {
			return time.Time{}, fmt.Errorf("kinesis source state: %w", err)
		}
		return f.Started, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("kinesis source state: %w", err)
	}
	var f sourceFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.Stream == "" {
		return time.Time{}, fmt.Errorf("kinesis source state %s: unreadable: %v", path, err)
	}
	if f.Stream != name {
		return time.Time{}, fmt.Errorf("the source reads Kinesis stream %q, but this delivery stream's buffer holds the positions of %q: "+
			"give the delivery stream a new name to read another Kinesis stream (or remove %s and the stream's buffer to start over)", name, f.Stream, dir)
	}
	return f.Started, nil
}

// streamNameOf returns the name of a stream given by name or ARN.
func streamNameOf(stream string) string {
	if i := strings.LastIndex(stream, ":stream/"); isARN(stream) && i >= 0 {
		return stream[i+len(":stream/"):]
	}
	return stream
}
