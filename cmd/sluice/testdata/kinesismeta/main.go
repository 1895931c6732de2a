// Command kinesismeta is a test transformation: it replaces each record
// with a JSON object of its data, its metadata and the invocation's source
// stream ARN, so a test can see what a Kinesis source hands a wasm
// transform.
package main

import (
	"encoding/json"

	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

func init() {
	guest.Handle(func(r guest.Record) guest.Result {
		out, err := json.Marshal(struct {
			Data      string            `json:"data"`
			Meta      map[string]string `json:"meta"`
			SourceARN string            `json:"source_arn"`
		}{string(r.Data), r.Meta, r.Invocation.SourceKinesisStreamARN})
		if err != nil {
			return guest.Fail(err.Error())
		}
		return guest.Replace(out)
	})
}

func main() {}
