package compress

// Decoders written from the format specifications, independent of the
// klauspost encoders under test: Snappy's block format (format_description.txt),
// its framing format (framing_format.txt) and Hadoop's block stream.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// specSnappyBlock decodes one raw Snappy block.
func specSnappyBlock(src []byte) ([]byte, error) {
	n, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, errors.New("bad length varint")
	}
	src = src[k:]
	dst := make([]byte, 0, n)
	for len(src) > 0 {
		tag := src[0]
		switch tag & 3 {
		case 0: // literal
			l := int(tag >> 2)
			src = src[1:]
			if l >= 60 {
				nb := l - 59
				if len(src) < nb {
					return nil, errors.New("short literal length")
				}
				l = 0
				for i := nb - 1; i >= 0; i-- {
					l = l<<8 | int(src[i])
				}
				src = src[nb:]
			}
			l++
			if len(src) < l {
				return nil, errors.New("short literal")
			}
			dst = append(dst, src[:l]...)
			src = src[l:]
			continue
		case 1:
			if len(src) < 2 {
				return nil, errors.New("short copy1")
			}
			length := 4 + int(tag>>2&7)
			off := int(tag>>5)<<8 | int(src[1])
			src = src[2:]
			if err := specCopy(&dst, off, length); err != nil {
				return nil, err
			}
		case 2:
			if len(src) < 3 {
				return nil, errors.New("short copy2")
			}
			length := 1 + int(tag>>2)
			off := int(binary.LittleEndian.Uint16(src[1:3]))
			src = src[3:]
			if err := specCopy(&dst, off, length); err != nil {
				return nil, err
			}
		case 3:
			if len(src) < 5 {
				return nil, errors.New("short copy4")
			}
			length := 1 + int(tag>>2)
			off := int(binary.LittleEndian.Uint32(src[1:5]))
			src = src[5:]
			if err := specCopy(&dst, off, length); err != nil {
				return nil, err
			}
		}
	}
	if uint64(len(dst)) != n {
		return nil, fmt.Errorf("decoded %d bytes, header says %d", len(dst), n)
	}
	return dst, nil
}

func specCopy(dst *[]byte, off, length int) error {
	if off == 0 || off > len(*dst) {
		return fmt.Errorf("bad copy offset %d at %d", off, len(*dst))
	}
	for i := 0; i < length; i++ { // byte by byte: copies may overlap
		*dst = append(*dst, (*dst)[len(*dst)-off])
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// specSnappyFramed decodes a Snappy framing-format stream, checking the
// stream identifier and every checksum.
func specSnappyFramed(src []byte) ([]byte, error) {
	ident := []byte{0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'Y'}
	if !bytes.HasPrefix(src, ident) {
		return nil, errors.New("missing stream identifier")
	}
	src = src[len(ident):]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("short chunk header")
		}
		typ := src[0]
		l := int(src[1]) | int(src[2])<<8 | int(src[3])<<16
		src = src[4:]
		if len(src) < l {
			return nil, errors.New("short chunk")
		}
		body := src[:l]
		src = src[l:]
		switch {
		case typ == 0x00 || typ == 0x01:
			crc := binary.LittleEndian.Uint32(body[:4])
			data := body[4:]
			if typ == 0x00 {
				var err error
				if data, err = specSnappyBlock(data); err != nil {
					return nil, err
				}
			}
			if len(data) > 65536 {
				return nil, errors.New("chunk over 64 KiB")
			}
			if maskedCRC(data) != crc {
				return nil, errors.New("checksum mismatch")
			}
			out = append(out, data...)
		case typ == 0xff:
			if !bytes.Equal(body, ident[4:]) {
				return nil, errors.New("bad repeated identifier")
			}
		case typ >= 0x80: // skippable, padding
		default:
			return nil, fmt.Errorf("reserved unskippable chunk %#x", typ)
		}
	}
	return out, nil
}

// specHadoopSnappy decodes Hadoop's BlockCompressorStream of Snappy blocks.
func specHadoopSnappy(r io.Reader) ([]byte, error) {
	var out []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		want := int(binary.BigEndian.Uint32(hdr[:]))
		got := 0
		for got < want {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return nil, fmt.Errorf("chunk length: %w", err)
			}
			n := binary.BigEndian.Uint32(hdr[:])
			if n > hadoopBufferSize {
				return nil, fmt.Errorf("chunk of %d bytes exceeds Hadoop's buffer", n)
			}
			c := make([]byte, n)
			if _, err := io.ReadFull(r, c); err != nil {
				return nil, err
			}
			d, err := specSnappyBlock(c)
			if err != nil {
				return nil, err
			}
			got += len(d)
			out = append(out, d...)
		}
		if got != want {
			return nil, fmt.Errorf("block decoded to %d bytes, header says %d", got, want)
		}
	}
}
