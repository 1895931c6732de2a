// Command echo is the guest SDK's test module: it describes each record it
// receives as JSON (what the SDK decoded), or acts on commands in the data.
package main

import (
	"encoding/json"
	"os"

	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

type echo struct {
	ID         string            `json:"id"`
	Arrival    int64             `json:"arrival"`
	Data       string            `json:"data"`
	Meta       map[string]string `json:"meta"`
	Invocation guest.Invocation  `json:"invocation"`
	Config     string            `json:"config"`
	Env        string            `json:"env"`
}

func init() {
	guest.OnInit(func(config []byte) error {
		if string(config) == "fail" {
			return os.ErrInvalid
		}
		return nil
	})
	guest.Handle(func(r guest.Record) guest.Result {
		switch string(r.Data) {
		case "drop":
			return guest.Drop()
		case "fail":
			return guest.Fail("failed on purpose")
		case "panic":
			panic("boom")
		case "keys":
			return guest.Pass().WithKeys(map[string]string{"b": "2", "a": "1"})
		case "empty key":
			return guest.Pass().WithKeys(map[string]string{"": "x"})
		case "status":
			return guest.Result{Status: 9}
		case "upper in place":
			for i, c := range r.Data {
				if c >= 'a' && c <= 'z' {
					r.Data[i] = c - 'a' + 'A'
				}
			}
			return guest.Replace(r.Data)
		case "empty":
			return guest.Replace(nil)
		}
		out, err := json.Marshal(echo{r.ID, r.ArrivalMillis, string(r.Data), r.Meta, *r.Invocation, string(guest.Config()), os.Getenv("ECHO")})
		if err != nil {
			return guest.Fail(err.Error())
		}
		return guest.Replace(out)
	})
}

func main() {}
