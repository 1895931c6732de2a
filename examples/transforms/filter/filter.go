package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

// filter drops the records whose field equals value.
type filter struct {
	field string
	value string
}

// configure reads the condition from config (JSON {"field","value"}) when
// given, else from the environment (lookupEnv is os.LookupEnv: DROP_VALUE
// set to "" matches empty strings).
func (f *filter) configure(config []byte, lookupEnv func(string) (string, bool)) error {
	f.field, f.value = "level", "debug"
	if v, ok := lookupEnv("DROP_FIELD"); ok {
		f.field = v
	}
	if v, ok := lookupEnv("DROP_VALUE"); ok {
		f.value = v
	}
	if len(config) > 0 {
		var c struct {
			Field *string `json:"field"`
			Value *string `json:"value"`
		}
		dec := json.NewDecoder(bytes.NewReader(config))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("filter: config %s: %w", config, err)
		}
		if c.Field != nil {
			f.field = *c.Field
		}
		if c.Value != nil {
			f.value = *c.Value
		}
	}
	if f.field == "" {
		return errors.New("filter: the field name is empty")
	}
	return nil
}

func (f *filter) handle(r guest.Record) guest.Result {
	if f.matches(r.Data) {
		return guest.Drop()
	}
	return guest.Pass()
}

// matches reports whether data is a JSON object whose field equals value.
func (f *filter) matches(data []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return false
	}
	raw, ok := obj[f.field]
	if !ok {
		return false
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil && s == f.value
	}
	return string(raw) == f.value
}
