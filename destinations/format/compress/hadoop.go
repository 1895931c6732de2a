package compress

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/klauspost/compress/s2"
)

// Hadoop's SnappyCodec writes through a BlockCompressorStream: input is cut
// into blocks, and each block is written as
//
//	uint32 BE  uncompressed length of the block
//	uint32 BE  compressed length of the chunk
//	[]byte     raw Snappy block (no framing, no checksum)
//
// (a block may carry several length-prefixed chunks; writers emit one).
// Readers use io.compression.codec.snappy.buffersize (256 KiB by default)
// as their buffer and reject chunks that do not fit in it, so blocks hold
// at most bufferSize - (bufferSize/6 + 32) bytes of input, the writer's
// own bound, which keeps the worst-case Snappy output inside the buffer.
const (
	hadoopBufferSize = 256 << 10
	// HadoopBlockSize is the uncompressed size of a full HADOOP_SNAPPY block.
	HadoopBlockSize = hadoopBufferSize - (hadoopBufferSize/6 + 32)
)

type hadoopWriter struct {
	w   io.Writer
	buf []byte // pending input, cap HadoopBlockSize
	out []byte // 8-byte header + compressed block
	err error
}

func newHadoop(w io.Writer) (io.WriteCloser, error) {
	return &hadoopWriter{
		w:   w,
		buf: make([]byte, 0, HadoopBlockSize),
		out: make([]byte, 8+s2.MaxEncodedLen(HadoopBlockSize)),
	}, nil
}

var errHadoopClosed = errors.New("hadoop-snappy writer closed")

func (h *hadoopWriter) Write(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), HadoopBlockSize-len(h.buf))
		h.buf = append(h.buf, p[:k]...)
		p = p[k:]
		n += k
		if len(h.buf) == HadoopBlockSize {
			if err := h.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (h *hadoopWriter) flush() error {
	if len(h.buf) == 0 {
		return nil
	}
	c := s2.EncodeSnappy(h.out[8:], h.buf)
	binary.BigEndian.PutUint32(h.out[0:4], uint32(len(h.buf)))
	binary.BigEndian.PutUint32(h.out[4:8], uint32(len(c)))
	h.buf = h.buf[:0]
	if _, err := h.w.Write(h.out[:8+len(c)]); err != nil {
		h.err = err
		return err
	}
	return nil
}

// Close writes the last, partial block. An empty stream is zero bytes, as
// Hadoop writes it.
func (h *hadoopWriter) Close() error {
	if h.err == errHadoopClosed {
		return nil
	}
	if h.err != nil {
		return h.err
	}
	err := h.flush()
	if err == nil {
		h.err = errHadoopClosed
	}
	return err
}
