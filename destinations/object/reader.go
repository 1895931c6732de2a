package object

import (
	"context"
	"io"
	"time"
)

// Reader is the read side of a store: what `sluice dlq` uses to find and
// read the dead letters a Writer wrote. Stores offer it beside Store
// (filestore.Reader, s3store.Store); a Reader never writes. Errors for a
// key that does not exist wrap fs.ErrNotExist.
type Reader interface {
	// List returns the objects whose keys start with prefix, sorted by
	// key (byte order). Objects being written (a local store's temporary
	// files) are not listed.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Open opens the object key for reading.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Close releases the reader's resources.
	Close(ctx context.Context) error
}

// Info is one listed object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}
