package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

// enricher derives the partition keys; its map is reused across records
// (the SDK encodes a result before the next record).
type enricher struct {
	keys map[string]string
}

// fields are the parts of a record enrich reads.
type fields struct {
	CustomerID json.RawMessage `json:"customer_id"`
	Timestamp  *string         `json:"timestamp"`
}

func (e *enricher) handle(r guest.Record) guest.Result {
	customer, year, err := keysOf(r.Data, r.ArrivalMillis)
	if err != nil {
		return guest.Fail(err.Error())
	}
	e.keys["customer_id"] = customer
	e.keys["year"] = strconv.Itoa(year)
	return guest.Pass().WithKeys(e.keys)
}

// keysOf returns the customer_id and the year of a record.
func keysOf(data []byte, arrivalMillis int64) (customer string, year int, err error) {
	var f fields
	if err := json.Unmarshal(data, &f); err != nil {
		return "", 0, fmt.Errorf("enrich: not a JSON object: %w", err)
	}
	switch {
	case len(f.CustomerID) == 0 || string(f.CustomerID) == "null":
		return "", 0, errors.New("enrich: no customer_id")
	case f.CustomerID[0] == '"':
		if err := json.Unmarshal(f.CustomerID, &customer); err != nil {
			return "", 0, fmt.Errorf("enrich: customer_id: %w", err)
		}
	case f.CustomerID[0] == '-' || f.CustomerID[0] >= '0' && f.CustomerID[0] <= '9':
		customer = string(f.CustomerID)
	default:
		return "", 0, fmt.Errorf("enrich: customer_id %s is neither a string nor a number", f.CustomerID)
	}
	if customer == "" {
		return "", 0, errors.New("enrich: customer_id is empty")
	}
	if f.Timestamp == nil {
		return customer, time.UnixMilli(arrivalMillis).UTC().Year(), nil
	}
	t, err := parseTimestamp(*f.Timestamp)
	if err != nil {
		return "", 0, fmt.Errorf("enrich: timestamp: %w", err)
	}
	return customer, t.UTC().Year(), nil
}

// parseTimestamp accepts RFC 3339, and zone-less date-times and dates as
// UTC.
func parseTimestamp(s string) (time.Time, error) {
	var first error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t, nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, first
}
