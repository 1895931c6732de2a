package memory_test

import (
	"testing"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/buffertest"
	"github.com/sluice-dev/sluice/buffer/memory"
)

func TestConformance(t *testing.T) {
	buffertest.Run(t, buffertest.Harness{
		Open: func(_ testing.TB, _ string, maxBytes int64) buffer.Buffer {
			return memory.New(memory.Options{MaxBytes: maxBytes})
		},
	})
}
