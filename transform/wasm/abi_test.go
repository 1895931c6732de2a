package wasm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// abiExample returns the hex bytes of the n-th code block of ABI.md §7
// (0: input, 1: output), quoted strings included as their bytes.
func abiExample(t *testing.T, n int) []byte {
	t.Helper()
	doc, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## 7. Worked example")
	if !ok {
		t.Fatal("ABI.md has no worked example")
	}
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(sec, -1)
	if len(blocks) <= n {
		t.Fatalf("ABI.md §7 has %d code blocks", len(blocks))
	}
	var out []byte
	token := regexp.MustCompile(`"[^"]*"|\b[0-9a-f]{2}\b`)
	for _, line := range strings.Split(blocks[n][1], "\n") {
		// Comments follow two or more spaces after the bytes.
		if i := strings.Index(line, "   "); i >= 0 {
			line = line[:i]
		}
		for _, tok := range token.FindAllString(line, -1) {
			if tok[0] == '"' {
				out = append(out, tok[1:len(tok)-1]...)
				continue
			}
			b, _ := hex.DecodeString(tok)
			out = append(out, b...)
		}
	}
	return out
}

func TestABIDocumentExample(t *testing.T) {
	h := callHeader{invocationID: "i", streamARN: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s", region: "us-east-1"}
	recs := []pipeline.Record{{ID: "r1", Arrived: time.UnixMilli(1700000000000), Data: []byte(`{"a":1}`)}}
	got := make([]byte, inputSize(&h, recs))
	encodeInput(got, &h, recs)
	if want := abiExample(t, 0); !bytes.Equal(got, want) {
		t.Errorf("input encoding differs from ABI.md §7:\n got %x\nwant %x", got, want)
	}
	rs, err := decodeOutput(abiExample(t, 1), nil)
	if err != nil {
		t.Fatalf("ABI.md §7 output: %v", err)
	}
	if len(rs) != 1 || rs[0].result != resultOk || string(rs[0].id) != "r1" || !rs[0].unchanged || rs[0].nkeys != 1 {
		t.Fatalf("decoded %+v", rs)
	}
	eachKey(rs[0].keys, rs[0].nkeys, func(k, v []byte) {
		if string(k) != "k" || string(v) != "v" {
			t.Errorf("key %q=%q", k, v)
		}
	})
}

// output builds an output buffer: header then raw result bytes.
func output(status, count uint32, body ...[]byte) []byte {
	b := []byte(magicOut)
	b = le32(b, ABIVersion)
	b = le32(b, status)
	b = le32(b, count)
	for _, x := range body {
		b = append(b, x...)
	}
	return b
}

func le32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func str(s string) []byte { return append(le32(nil, uint32(len(s))), s...) }

func result(code byte, id, data string, keys ...string) []byte {
	b := append([]byte{code}, str(id)...)
	b = append(b, str(data)...)
	b = le32(b, uint32(len(keys)/2))
	for _, k := range keys {
		b = append(b, str(k)...)
	}
	return append(b, str("")...)
}

func TestDecodeOutputRejects(t *testing.T) {
	good := result(0, "r0", "x")
	cases := map[string][]byte{
		"short":             []byte("SLUO"),
		"bad magic":         append([]byte("SLUX"), output(0, 1, good)[4:]...),
		"bad version":       append(append([]byte(magicOut), 2, 0, 0, 0), output(0, 1, good)[8:]...),
		"bad status":        output(7, 1, good),
		"count too large":   output(0, 2, good),
		"count too small":   output(0, 0, good),
		"trailing bytes":    output(0, 1, good, []byte{0}),
		"truncated":         output(0, 1, good[:len(good)-1]),
		"unknown result":    output(0, 1, result(3, "r0", "x")),
		"empty key":         output(0, 1, result(0, "r0", "x", "", "v")),
		"repeated key":      output(0, 1, result(0, "r0", "x", "k", "1", "k", "2")),
		"huge data length":  output(0, 1, append(append([]byte{0}, str("r0")...), 0xfe, 0xff, 0xff, 0xff)),
		"huge count":        output(0, 0xffffffff),
		"bad failure":       output(1, 5),
		"failure trailing":  append(output(1, 0), 1),
		"key truncated":     output(0, 1, append(append(append([]byte{0}, str("r0")...), str("x")...), 1, 0, 0, 0, 5, 0, 0, 0)),
		"message truncated": output(0, 1, result(0, "r0", "x")[:len(good)-2]),
	}
	for name, buf := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeOutput(buf, nil)
			if !errors.Is(err, errInvalid) {
				t.Errorf("decodeOutput: %v, want an invalid-output error", err)
			}
		})
	}
	if _, err := decodeOutput(append(output(1, 0)[:12], str("boom")...), nil); err == nil || !strings.Contains(err.Error(), "boom") || errors.Is(err, errInvalid) {
		t.Errorf("status 1: %v", err)
	}
	rs, err := decodeOutput(output(0, 2, good, result(2, "r1", "", "a", "b")), nil)
	if err != nil || len(rs) != 2 || rs[1].result != resultProcessingFailed || rs[1].nkeys != 1 {
		t.Errorf("valid buffer: %+v, %v", rs, err)
	}
}
