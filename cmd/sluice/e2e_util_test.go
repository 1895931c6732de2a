package main

import (
	"errors"
	"io"
	"net/http"
	"testing"
)

func asError[T error](err error, target *T) bool { return errors.As(err, target) }

func mustRead(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
