package firehoseapi

import (
	"encoding/base64"
	"encoding/binary"
)

// decodeBase64Plain decodes src into dst when src holds only the
// standard alphabet and '=' and encoding/base64 accepts it, and then
// reports ok; it then wrote what encoding/base64 would, about twice as
// fast (the Data of PutRecord and PutRecordBatch is the largest cost of
// ingest). Sixteen characters at a time go through four tables that hold
// each character's six bits already in place (so a quantum is three ORs)
// and flag any byte outside the alphabet; the last quantum (which may be
// padded) is left to encoding/base64. Otherwise (a
// character outside the alphabet, \r or \n included, or an error) it
// reports !ok, and dst holds garbage. dst must hold
// base64.StdEncoding.DecodedLen(len(src)) bytes.
func decodeBase64Plain(dst, src []byte) (int, bool) {
	n, si := 0, 0
	for len(src)-si >= 20 && len(dst)-n >= 14 {
		s := src[si : si+16 : si+16]
		a := b64t0[s[0]] | b64t1[s[1]] | b64t2[s[2]] | b64t3[s[3]]
		b := b64t0[s[4]] | b64t1[s[5]] | b64t2[s[6]] | b64t3[s[7]]
		c := b64t0[s[8]] | b64t1[s[9]] | b64t2[s[10]] | b64t3[s[11]]
		d := b64t0[s[12]] | b64t1[s[13]] | b64t2[s[14]] | b64t3[s[15]]
		if (a|b|c|d)&b64Bad != 0 {
			return 0, false
		}
		// Two quanta (six bytes) per eight-byte store; the second store
		// overwrites the first's two spare bytes.
		binary.BigEndian.PutUint64(dst[n:], uint64(a)<<40|uint64(b)<<16)
		binary.BigEndian.PutUint64(dst[n+6:], uint64(c)<<40|uint64(d)<<16)
		n += 12
		si += 16
	}
	for _, c := range src[si:] {
		if b64t0[c]&b64Bad != 0 && c != '=' {
			return 0, false
		}
	}
	m, err := base64.StdEncoding.Decode(dst[n:], src[si:])
	if err != nil {
		return 0, false
	}
	return n + m, true
}

// b64Bad marks a character outside the standard alphabet in the tables.
const b64Bad = 0xff000000

// b64t0..b64t3 map a character to its six bits, shifted for the first to
// the fourth place of a quantum, or to b64Bad.
var b64t0, b64t1, b64t2, b64t3 = func() (t0, t1, t2, t3 [256]uint32) {
	for i := range 256 {
		t0[i], t1[i], t2[i], t3[i] = b64Bad, b64Bad, b64Bad, b64Bad
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v, c := range []byte(alphabet) {
		t0[c], t1[c], t2[c], t3[c] = uint32(v)<<18, uint32(v)<<12, uint32(v)<<6, uint32(v)
	}
	return
}()
