package pgproxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ControlHandler is an HTTP endpoint that drives p, for shell scripts:
//
//	POST /block                   Block
//	POST /unblock                 Unblock
//	POST /cut-on-commit[?n=N]     CutBeforeCommit(N), N defaults to 1
//	POST /lose-commit-answer[?n=N] LoseCommitAnswer(N), N defaults to 1
//	POST /reset                   Reset
//	GET  /status                  Status
//
// Every request answered 200 carries the Status as JSON. A wrong method
// is answered 405, a bad n 400.
func (p *Proxy) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /block", func(w http.ResponseWriter, _ *http.Request) {
		p.Block()
		p.writeStatus(w)
	})
	mux.HandleFunc("POST /unblock", func(w http.ResponseWriter, _ *http.Request) {
		p.Unblock()
		p.writeStatus(w)
	})
	mux.HandleFunc("POST /cut-on-commit", func(w http.ResponseWriter, r *http.Request) {
		if n, ok := count(w, r); ok {
			p.CutBeforeCommit(n)
			p.writeStatus(w)
		}
	})
	mux.HandleFunc("POST /lose-commit-answer", func(w http.ResponseWriter, r *http.Request) {
		if n, ok := count(w, r); ok {
			p.LoseCommitAnswer(n)
			p.writeStatus(w)
		}
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		p.Reset()
		p.writeStatus(w)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		p.writeStatus(w)
	})
	return mux
}

// count reads the n parameter (default 1), answering 400 when it is not a
// positive integer.
func count(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return 1, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		http.Error(w, "n must be a positive integer", http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

func (p *Proxy) writeStatus(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.Status())
}
