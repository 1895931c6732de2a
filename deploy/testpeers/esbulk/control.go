package esbulk

import (
	"encoding/json"
	"net/http"
	"time"
)

// Control is the body of POST /_esbulk/faults: each field present sets
// that fault (as the method of the same name does); {"clear":true} first
// removes every fault. The FailItems hook cannot be set this way.
type Control struct {
	Clear        bool `json:"clear,omitempty"`
	FailRequests *struct {
		N          int    `json:"n"`
		Status     int    `json:"status"`
		Body       string `json:"body,omitempty"`
		RetryAfter string `json:"retry_after,omitempty"`
	} `json:"fail_requests,omitempty"`
	Storm *struct {
		Seconds float64 `json:"seconds"`
		Status  int     `json:"status"`
	} `json:"storm,omitempty"`
	Drop *struct {
		N int `json:"n"`
		// After selects DropAfterProcessing.
		After bool `json:"after"`
	} `json:"drop,omitempty"`
	SlowMillis *int `json:"slow_ms,omitempty"`
	NonBulk    *struct {
		N    int    `json:"n"`
		Body string `json:"body,omitempty"`
	} `json:"non_bulk,omitempty"`
}

// State is the answer of GET /_esbulk/state.
type State struct {
	Count    int            `json:"count"`
	Indices  map[string]int `json:"indices"`
	Requests int            `json:"requests"`
}

// Apply sets the faults c describes.
func (s *Server) Apply(c Control) {
	if c.Clear {
		s.ClearFaults()
	}
	if f := c.FailRequests; f != nil {
		s.FailRequests(f.N, f.Status, f.Body, f.RetryAfter)
	}
	if f := c.Storm; f != nil {
		s.Storm(time.Duration(f.Seconds*float64(time.Second)), f.Status)
	}
	if f := c.Drop; f != nil {
		mode := DropBeforeProcessing
		if f.After {
			mode = DropAfterProcessing
		}
		s.DropConnection(f.N, mode)
	}
	if c.SlowMillis != nil {
		s.Slow(time.Duration(*c.SlowMillis) * time.Millisecond)
	}
	if f := c.NonBulk; f != nil {
		s.NonBulkAnswer(f.N, f.Body)
	}
}

// State returns the counters GET /_esbulk/state answers.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Indices: map[string]int{}, Requests: len(s.requests)}
	for name, ix := range s.indices {
		n := ix.live()
		st.Indices[name] = n
		st.Count += n
	}
	return st
}

func (s *Server) control(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case path == "_esbulk/state" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.State())
	case path == "_esbulk/faults" && r.Method == http.MethodPost:
		var c Control
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			writeError(w, http.StatusBadRequest, "parse_exception", "esbulk control: "+err.Error(), "")
			return
		}
		s.Apply(c)
		writeJSON(w, http.StatusOK, map[string]bool{"acknowledged": true})
	default:
		s.methodNotAllowed(w, r, map[string]string{"_esbulk/state": "GET", "_esbulk/faults": "POST"}[path])
	}
}
