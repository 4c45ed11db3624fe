// Package httpapi serves a decision log (package audit) over HTTP, read
// only, and reads one back: Handler is the API, Client its client.
package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/portcullis-dev/portcullis/audit"
)

// API paths served by Handler.
const (
	PathDecisions        = "/portcullis/v1/decisions"
	PathCheckpoints      = "/portcullis/v1/checkpoints"
	PathLatestCheckpoint = "/portcullis/v1/checkpoints/latest"
	PathConsistencyProof = "/portcullis/v1/proofs/consistency"
	PathRunning          = "/portcullis/v1/running"
)

// Handler serves the read-only audit API:
//
//	GET /portcullis/v1/decisions?digest=&repository=&action=&verdict=&actor=&policyRevision=&namespace=&since=&until=&order=&cursor=&limit=
//	GET /portcullis/v1/decisions/{index}[?treeSize=N]   record + inclusion proof
//	GET /portcullis/v1/checkpoints                      every signed checkpoint (JSON)
//	GET /portcullis/v1/checkpoints/latest               the latest signed checkpoint (text/plain note)
//	GET /portcullis/v1/proofs/consistency?from=&to=
//	GET /portcullis/v1/running[?namespace=]
//
// Errors are JSON {"error": "..."}; other methods than GET and HEAD get
// 405. It claims only these paths, so a server mounts it on each of them
// (or on "/portcullis/v1/decisions", "/portcullis/v1/decisions/",
// "/portcullis/v1/checkpoints", "/portcullis/v1/checkpoints/",
// "/portcullis/v1/proofs/" and "/portcullis/v1/running"). Authentication
// is the caller's: wrap it. Internal errors are logged to log (nil:
// slog.Default()). The auditors' web pages are package audit/ui.
func Handler(l *audit.Log, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{l: l}
	get := func(f func(http.ResponseWriter, *http.Request) error) http.Handler {
		return Serve(log, f, func(w http.ResponseWriter, status int, msg string) {
			writeJSON(w, status, map[string]string{"error": msg})
		})
	}
	mux := http.NewServeMux()
	mux.Handle(PathDecisions, get(h.decisions))
	mux.Handle(PathDecisions+"/{index}", get(h.decision))
	mux.Handle(PathCheckpoints, get(h.checkpoints))
	mux.Handle(PathLatestCheckpoint, get(h.latest))
	mux.Handle(PathConsistencyProof, get(h.consistency))
	mux.Handle(PathRunning, get(h.running))
	return mux
}

type handler struct {
	l *audit.Log
}

// Error is an error answered with its own status and message.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// BadRequest answers err with 400 and its message.
func BadRequest(err error) error {
	return &Error{Status: http.StatusBadRequest, Msg: err.Error()}
}

// Serve serves f for GET and HEAD (405 otherwise) and renders its error
// with render: the one place that decides an error's status and message.
// An *Error has its own; audit.ErrNotFound is 404, audit.ErrOutOfRange
// 400; anything else is a 500 "internal error", logged to log.
func Serve(log *slog.Logger, f func(http.ResponseWriter, *http.Request) error, render func(w http.ResponseWriter, status int, msg string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			err = &Error{Status: http.StatusMethodNotAllowed, Msg: "the audit API is read-only"}
		} else {
			err = f(w, r)
		}
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, "internal error"
		var he *Error
		switch {
		case errors.As(err, &he):
			status, msg = he.Status, he.Msg
		case errors.Is(err, audit.ErrNotFound):
			status, msg = http.StatusNotFound, err.Error()
		case errors.Is(err, audit.ErrOutOfRange):
			status, msg = http.StatusBadRequest, err.Error()
		default:
			log.ErrorContext(r.Context(), "audit API", "path", r.URL.Path, "err", err)
		}
		render(w, status, msg)
	})
}

// writeJSON writes v; a failure to write is the client's (it went away).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) decisions(w http.ResponseWriter, r *http.Request) error {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		return BadRequest(err)
	}
	p, err := h.l.Search(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func uintParam(name, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &Error{Status: http.StatusBadRequest, Msg: name + " " + strconv.Quote(s) + ": want a non-negative integer"}
	}
	return n, nil
}

// Prove answers .../{index}?treeSize=N from l: the record and its
// inclusion proof (for the latest checkpoint without treeSize).
func Prove(l *audit.Log, r *http.Request) (audit.Proved, error) {
	index, err := uintParam("index", r.PathValue("index"))
	if err != nil {
		return audit.Proved{}, err
	}
	var size uint64
	if s := r.URL.Query().Get("treeSize"); s != "" {
		if size, err = uintParam("treeSize", s); err != nil {
			return audit.Proved{}, err
		}
	}
	return l.Prove(r.Context(), index, size)
}

func (h *handler) decision(w http.ResponseWriter, r *http.Request) error {
	p, err := Prove(h.l, r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *handler) checkpoints(w http.ResponseWriter, r *http.Request) error {
	cps, err := h.l.CheckpointNotes(r.Context())
	if err != nil {
		return err
	}
	notes := make([]string, len(cps))
	for i, c := range cps {
		notes[i] = string(c)
	}
	writeJSON(w, http.StatusOK, map[string][]string{"checkpoints": notes})
	return nil
}

func (h *handler) latest(w http.ResponseWriter, r *http.Request) error {
	c, err := h.l.LatestCheckpoint(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(c.Note) // a failure is the client's
	return nil
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, err := uintParam("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := uintParam("to", q.Get("to"))
	if err != nil {
		return err
	}
	p, err := h.l.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *handler) running(w http.ResponseWriter, r *http.Request) error {
	es, err := h.l.Running(r.Context(), r.URL.Query().Get(ParamNamespace))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string][]audit.Entry{"running": es})
	return nil
}
