// Command mask-email is a Sluice WebAssembly transformation that redacts
// e-mail addresses in JSON records: the value of every "email" field, at any
// depth (objects nested in objects and in arrays), becomes its first
// character, "***" and its domain: "jane@example.com" → "j***@example.com".
//
// A string without "@" or with nothing before it becomes "***"; a non-string
// value (number, boolean, object, array) is replaced entirely by the string
// "***"; null stays null (there is nothing to redact). The key is matched
// exactly ("email", after unescaping; not "Email"). Everything else is kept
// byte for byte: key order, whitespace, number spellings. A record without
// an email field is returned unchanged (the host copies nothing back). A
// record that is not one JSON value is ProcessingFailed, with the syntax
// error as message.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o mask-email.wasm ./examples/transforms/mask-email
package main

import "github.com/sluice-dev/sluice/transform/wasm/guest"

func init() {
	m := &masker{}
	guest.Handle(m.handle)
}

// main is required by the toolchain; a reactor module never runs it.
func main() {}

// masker holds the output buffer, reused across records.
type masker struct {
	out []byte
}

func (m *masker) handle(r guest.Record) guest.Result {
	out, changed, err := maskEmails(m.out[:0], r.Data)
	if err != nil {
		return guest.Fail(err.Error())
	}
	if !changed {
		return guest.Pass()
	}
	m.out = out
	return guest.Replace(out)
}
