package s3

import (
	"math/rand/v2"
)

// randomBytes returns n incompressible bytes (fixed seed per size).
func randomBytes(n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}
