// Command guest is the test module of package wasm: a minimal
// implementation of ABI.md version 1 in Go whose behaviour per record is
// chosen by the record's data (see transform). It is built during the
// tests with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"
)

func main() {}

var (
	inBuf  []byte
	outBuf []byte
	config []byte
	hold   [][]byte
)

//go:wasmexport sluice_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport sluice_alloc
func alloc(size int32) int32 {
	inBuf = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&inBuf[0])))
}

//go:wasmexport sluice_init
func initConfig(ptr, n int32) int32 {
	if n > 0 {
		config = bytes.Clone(inBuf[:n])
	}
	if bytes.Equal(config, []byte("refuse")) {
		fmt.Fprintln(os.Stderr, "refusing the configuration")
		return 7
	}
	return 0
}

type rec struct {
	id, data []byte
}

//go:wasmexport sluice_transform
func transform(ptr, n int32) int64 {
	in := inBuf[:n]
	le := binary.LittleEndian
	count := int(le.Uint32(in[12:]))
	off := 16
	str := func() []byte {
		l := int(le.Uint32(in[off:]))
		off += 4
		s := in[off : off+l]
		off += l
		return s
	}
	for range 4 {
		str()
	}
	out := append(outBuf[:0], "SLUO"...)
	out = le.AppendUint32(out, 1)
	out = le.AppendUint32(out, 0)
	countAt := len(out)
	out = le.AppendUint32(out, 0)
	results := 0
	emit := func(result byte, id, data []byte, unchanged bool, keys [][2]string, msg string) {
		results++
		out = append(out, result)
		out = le.AppendUint32(out, uint32(len(id)))
		out = append(out, id...)
		if unchanged {
			out = le.AppendUint32(out, 0xFFFFFFFF)
		} else {
			out = le.AppendUint32(out, uint32(len(data)))
			out = append(out, data...)
		}
		out = le.AppendUint32(out, uint32(len(keys)))
		for _, kv := range keys {
			out = le.AppendUint32(out, uint32(len(kv[0])))
			out = append(out, kv[0]...)
			out = le.AppendUint32(out, uint32(len(kv[1])))
			out = append(out, kv[1]...)
		}
		out = le.AppendUint32(out, uint32(len(msg)))
		out = append(out, msg...)
	}
	unchanged := os.Getenv("UNCHANGED") == "1"
	for range count {
		id := str()
		off += 8
		data := str()
		nm := int(le.Uint32(in[off:]))
		off += 4
		for range 2 * nm {
			str()
		}
		switch {
		case len(data) > 64 || data[0] == '{':
			// Ordinary records (the benchmark's JSON): skip the commands.
			emit(0, id, data, unchanged, nil, "")
		case bytes.Equal(data, []byte("loop")):
			for {
			}
		case bytes.Equal(data, []byte("panic")):
			panic("guest panic")
		case bytes.Equal(data, []byte("trap")):
			var p *int
			_ = *p
		case bytes.Equal(data, []byte("oom")):
			for {
				hold = append(hold, make([]byte, 1<<20))
			}
		case bytes.Equal(data, []byte("garbage")):
			outBuf = append(outBuf[:0], "this is not an output buffer"...)
			return int64(uintptr(unsafe.Pointer(&outBuf[0])))<<32 | int64(len(outBuf))
		case bytes.Equal(data, []byte("error")):
			out = append(outBuf[:0], "SLUO"...)
			out = le.AppendUint32(out, 1)
			out = le.AppendUint32(out, 1)
			out = le.AppendUint32(out, 10)
			out = append(out, "guest said"...)
			outBuf = out
			return int64(uintptr(unsafe.Pointer(&outBuf[0])))<<32 | int64(len(outBuf))
		case bytes.Equal(data, []byte("missing")):
		case bytes.Equal(data, []byte("dup")):
			emit(0, id, data, true, nil, "")
			emit(0, id, data, true, nil, "")
		case bytes.Equal(data, []byte("drop")):
			emit(1, id, nil, true, nil, "")
		case bytes.Equal(data, []byte("fail")):
			emit(2, id, nil, true, nil, "bad record")
		case bytes.Equal(data, []byte("env")):
			emit(0, id, []byte(os.Getenv("GREETING")+"|"+string(config)), false, nil, "")
		case bytes.HasPrefix(data, []byte("file:")):
			b, err := os.ReadFile(string(data[5:]))
			if err != nil {
				b = []byte("ERR")
			}
			emit(0, id, b, false, nil, "")
		case bytes.HasPrefix(data, []byte("key:")):
			k, v, _ := bytes.Cut(data[4:], []byte("="))
			emit(0, id, nil, true, [][2]string{{string(k), string(v)}}, "")
		case bytes.HasPrefix(data, []byte("log:")):
			fmt.Println(string(data[4:]))
			emit(0, id, data, false, nil, "")
		case bytes.Equal(data, []byte("upper")):
			emit(0, id, bytes.ToUpper(data), false, nil, "")
		default:
			emit(0, id, data, unchanged, nil, "")
		}
	}
	le.PutUint32(out[countAt:], uint32(results))
	outBuf = out
	return int64(uintptr(unsafe.Pointer(&outBuf[0])))<<32 | int64(len(outBuf))
}
