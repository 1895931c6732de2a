package seal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// An encrypted object (a dead-letter file, an object a local store
// writes) is a header and chunks, all integers big-endian:
//
//	"SLSE", version (1), key id length (1 byte), key id, salt (32),
//	check value (16), then chunks: each ChunkSize bytes of plaintext
//	(the last one shorter, possibly empty) sealed with the chunk's number
//	as counter; the last one's nonce is flagged final, so a file cut at a
//	chunk boundary does not read as whole (the STREAM construction).
const (
	// StreamMagic starts every encrypted stream.
	StreamMagic   = "SLSE"
	streamVersion = 1
	// ChunkSize is the plaintext size of a stream's chunks.
	ChunkSize = 64 << 10
	finalFlag = 1
)

// ErrTruncated is an encrypted stream that ends before its final chunk.
var ErrTruncated = errors.New("seal: encrypted stream truncated")

// Writer encrypts a stream under the keyring's current key.
type Writer struct {
	w     io.Writer
	c     *Cipher
	buf   []byte
	n     uint64 // chunks written
	err   error
	close bool
}

// NewWriter writes the stream's header to w and returns the Writer of its
// chunks. Close writes the final chunk; it does not close w.
func NewWriter(w io.Writer, r *Keyring) (*Writer, error) {
	c, salt, err := r.New()
	if err != nil {
		return nil, err
	}
	h := AppendParams(append([]byte(StreamMagic), streamVersion), c, salt)
	if _, err := w.Write(h); err != nil {
		return nil, fmt.Errorf("seal: write header: %w", err)
	}
	return &Writer{w: w, c: c, buf: make([]byte, 0, ChunkSize+Overhead)}, nil
}

// Write encrypts p. A full chunk is sealed only once more data follows it,
// so that the last one can be flagged final at Close.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.close {
		return 0, errors.New("seal: write after Close")
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.flush(0); err != nil {
				return n, err
			}
		}
		k := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
	}
	return n, nil
}

func (w *Writer) flush(flags uint32) error {
	out := w.c.aead.Seal(w.buf[:0], nonce(w.n, flags), w.buf, nil)
	if _, err := w.w.Write(out); err != nil {
		w.err = fmt.Errorf("seal: write chunk %d: %w", w.n, err)
		return w.err
	}
	w.n++
	w.buf = w.buf[:0]
	return nil
}

// Close seals the final chunk.
func (w *Writer) Close() error {
	if w.err != nil || w.close {
		return w.err
	}
	w.close = true
	return w.flush(finalFlag)
}

// Reader decrypts a stream NewWriter wrote.
type Reader struct {
	r     *bufio.Reader
	c     *Cipher
	chunk []byte // decrypted, not yet read
	buf   []byte
	n     uint64
	done  bool
	err   error
}

// NewReader reads the stream's header from r and finds its key in the
// keyring: an *UnknownKeyError or ErrWrongKey when it is not there.
func NewReader(r io.Reader, ring *Keyring) (*Reader, error) {
	br := bufio.NewReaderSize(r, ChunkSize+Overhead)
	var h [6]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("seal: read header: %w", noEOF(err))
	}
	if string(h[:4]) != StreamMagic {
		return nil, errors.New("seal: not an encrypted stream")
	}
	if h[4] != streamVersion {
		return nil, fmt.Errorf("seal: stream version %d, want %d", h[4], streamVersion)
	}
	params := make([]byte, 1+int(h[5])+SaltSize+CheckSize)
	params[0] = h[5]
	if _, err := io.ReadFull(br, params[1:]); err != nil {
		return nil, fmt.Errorf("seal: read header: %w", noEOF(err))
	}
	c, _, err := ring.OpenParams(params)
	if err != nil {
		return nil, err
	}
	return &Reader{r: br, c: c, buf: make([]byte, ChunkSize+Overhead)}, nil
}

// KeyID is the id of the key the stream is under.
func (r *Reader) KeyID() string { return r.c.id }

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.chunk) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.next()
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

// next decrypts the next chunk: a full one may be followed by more, a
// short one must be final.
func (r *Reader) next() {
	n, err := io.ReadFull(r.r, r.buf)
	switch {
	case errors.Is(err, io.EOF):
		r.err = ErrTruncated
		return
	case errors.Is(err, io.ErrUnexpectedEOF):
	case err != nil:
		r.err = fmt.Errorf("seal: read chunk %d: %w", r.n, err)
		return
	}
	ct := r.buf[:n]
	flags := uint32(0)
	if n < len(r.buf) {
		flags = finalFlag
	} else if _, err := r.r.Peek(1); errors.Is(err, io.EOF) {
		flags = finalFlag // a final chunk of exactly ChunkSize
	}
	pt, err := r.c.aead.Open(ct[:0], nonce(r.n, flags), ct, nil)
	if err != nil {
		if flags == finalFlag {
			r.err = fmt.Errorf("%w (or damaged) at chunk %d", ErrTruncated, r.n)
		} else {
			r.err = fmt.Errorf("seal: chunk %d does not authenticate under key %s: %w", r.n, r.c.id, err)
		}
		return
	}
	r.chunk, r.done = pt, flags == finalFlag
	r.n++
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Binary helpers for files that store a cipher's parameters in a header
// of their own (a buffer segment's key file).

// AppendParams appends a file's key id, salt and check value: uint8 id
// length, id, salt, check.
func AppendParams(b []byte, c *Cipher, salt [SaltSize]byte) []byte {
	b = append(b, byte(len(c.id)))
	b = append(b, c.id...)
	b = append(b, salt[:]...)
	return append(b, c.check[:]...)
}

// OpenParams reads what AppendParams wrote and opens the file's cipher;
// it returns the bytes after them.
func (r *Keyring) OpenParams(b []byte) (*Cipher, []byte, error) {
	if len(b) < 1 || len(b) < 1+int(b[0])+SaltSize+CheckSize {
		return nil, nil, errors.New("seal: key parameters truncated")
	}
	idLen := int(b[0])
	id := string(b[1 : 1+idLen])
	var salt [SaltSize]byte
	copy(salt[:], b[1+idLen:])
	check := b[1+idLen+SaltSize : 1+idLen+SaltSize+CheckSize]
	c, err := r.Open(id, salt, check)
	if err != nil {
		return nil, nil, err
	}
	return c, b[1+idLen+SaltSize+CheckSize:], nil
}
