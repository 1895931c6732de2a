//go:build wasip1

package guest

import (
	"fmt"
	"os"
	"unsafe"
)

// The exports of ABI.md §1. Pointers are addresses in the module's linear
// memory, which is the Go heap: a region stays put (Go's collector does not
// move objects) and alive as long as the transformer references it.

//go:wasmexport sluice_abi_version
func sluiceABIVersion() uint32 { return ABIVersion }

//go:wasmexport sluice_alloc
func sluiceAlloc(size uint32) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(module.alloc(size)))
}

//go:wasmexport sluice_init
func sluiceInit(ptr unsafe.Pointer, size uint32) uint32 {
	if err := module.init(unsafe.Slice((*byte)(ptr), size)); err != nil {
		fmt.Fprintln(os.Stderr, "guest: sluice_init:", err)
		return 1
	}
	return 0
}

//go:wasmexport sluice_transform
func sluiceTransform(ptr unsafe.Pointer, size uint32) uint64 {
	out := module.transform(unsafe.Slice((*byte)(ptr), size))
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | uint64(len(out))
}
