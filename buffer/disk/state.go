package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/buffer/internal/frame"
	"github.com/sluice-dev/sluice/pipeline"
)

const (
	cursorName    = "cursor"
	cursorTmpName = "cursor.tmp"
	lockName      = "lock"
	cursorMagic   = "SLCU"
	cursorV1      = 1
	cursorV1Size  = 4 + 4 + 8 + 8 + 8 + 8 + 4
	cursorVersion = 2
	// cursorV2Head is the size of a version 2 file without in-flight
	// batches and CRC: magic, version, pad, log id, committed, count, pad.
	cursorV2Head = 4 + 4 + 8 + 8 + 4 + 4
	cursorMax    = cursorV2Head + 16*buffer.MaxInflight + 4
)

// cursorState is the content of the cursor file.
type cursorState struct {
	logID     [8]byte
	committed pipeline.Position
	inflight  []pipeline.BatchID // in log order, Part and Round zero
}

var errBadCursor = errors.New("corrupt cursor file")

// encode renders c in format version 2.
func (c cursorState) encode() []byte {
	n := len(c.inflight)
	b := make([]byte, cursorV2Head+16*n+4)
	copy(b[0:4], cursorMagic)
	b[4] = cursorVersion
	copy(b[8:16], c.logID[:])
	binary.LittleEndian.PutUint64(b[16:24], uint64(c.committed))
	binary.LittleEndian.PutUint32(b[24:28], uint32(n))
	for i, id := range c.inflight {
		o := cursorV2Head + 16*i
		binary.LittleEndian.PutUint64(b[o:], uint64(id.First))
		binary.LittleEndian.PutUint64(b[o+8:], uint64(id.End))
	}
	end := len(b) - 4
	binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[:end], frame.Table()))
	return b
}

// decodeCursor parses a cursor file of version 1 or 2.
func decodeCursor(b []byte) (cursorState, error) {
	var c cursorState
	if len(b) < cursorV2Head+4 || string(b[0:4]) != cursorMagic {
		return c, fmt.Errorf("%w: bad size or magic", errBadCursor)
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return c, fmt.Errorf("%w: bad padding", errBadCursor)
	}
	var size int
	switch b[4] {
	case cursorV1:
		size = cursorV1Size
	case cursorVersion:
		n := binary.LittleEndian.Uint32(b[24:28])
		if n > buffer.MaxInflight || binary.LittleEndian.Uint32(b[28:32]) != 0 {
			return c, fmt.Errorf("%w: bad in-flight count %d", errBadCursor, n)
		}
		size = cursorV2Head + 16*int(n) + 4
	default:
		return c, fmt.Errorf("%w: unknown version %d", errBadCursor, b[4])
	}
	if len(b) != size {
		return c, fmt.Errorf("%w: %d bytes, want %d", errBadCursor, len(b), size)
	}
	end := size - 4
	if crc32.Checksum(b[:end], frame.Table()) != binary.LittleEndian.Uint32(b[end:]) {
		return c, fmt.Errorf("%w: crc mismatch", errBadCursor)
	}
	copy(c.logID[:], b[8:16])
	c.committed = pipeline.Position(binary.LittleEndian.Uint64(b[16:24]))
	if b[4] == cursorV1 {
		id := pipeline.BatchID{
			First: pipeline.Position(binary.LittleEndian.Uint64(b[24:32])),
			End:   pipeline.Position(binary.LittleEndian.Uint64(b[32:40])),
		}
		if id.End != 0 {
			c.inflight = []pipeline.BatchID{id}
		}
	} else {
		for o := cursorV2Head; o < end; o += 16 {
			c.inflight = append(c.inflight, pipeline.BatchID{
				First: pipeline.Position(binary.LittleEndian.Uint64(b[o:])),
				End:   pipeline.Position(binary.LittleEndian.Uint64(b[o+8:])),
			})
		}
	}
	var prev pipeline.Position
	for i, id := range c.inflight {
		if id.End <= id.First || i > 0 && id.First < prev {
			return c, fmt.Errorf("%w: in-flight batches out of order", errBadCursor)
		}
		prev = id.End
	}
	return c, nil
}

// readCursor reads the cursor file of dir; it returns an error wrapping
// fs.ErrNotExist when absent, errBadCursor when unreadable as a cursor.
func readCursor(fsys vfs.FS, dir string) (cursorState, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, cursorName), os.O_RDONLY, 0)
	if err != nil {
		return cursorState{}, err
	}
	defer f.Close()
	b := make([]byte, cursorMax+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return cursorState{}, fmt.Errorf("read cursor: %w", err)
	}
	return decodeCursor(b[:n])
}

// writeCursor replaces the cursor file atomically and durably (see
// replaceFile).
func (l *Log) writeCursor(c cursorState) error {
	if err := l.replaceFile(cursorName, cursorTmpName, c.encode()); err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	return nil
}

// replaceFile replaces the file name of the log's directory with data,
// atomically and durably: temporary file tmpName, fsync, rename, fsync of
// the directory. On error the previous file is still whole (the rename is
// atomic); which of the two a crash leaves is then unknown.
func (l *Log) replaceFile(name, tmpName string, data []byte) error {
	tmp := filepath.Join(l.dir, tmpName)
	f, err := l.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A file whose write or sync failed is not reused: the next
		// attempt creates a new one.
		_ = l.fs.Remove(tmp)
		return err
	}
	if err := l.fs.Rename(tmp, filepath.Join(l.dir, name)); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}
