package audit

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
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
// and the auditors' read-only web pages (see ui.go):
//
//	GET /ui/decisions?<the same filters>                 searchable list
//	GET /ui/decisions/{index}                            one record, its evidence and inclusion proof
//
// API errors are JSON {"error": "..."}, page errors HTML; other methods than
// GET and HEAD get 405. It claims only these paths, so a server mounts it on
// each of them (or on "/portcullis/v1/decisions", "/portcullis/v1/decisions/",
// "/portcullis/v1/checkpoints", "/portcullis/v1/checkpoints/",
// "/portcullis/v1/proofs/", "/portcullis/v1/running", "/ui/decisions" and
// "/ui/decisions/"). Authentication is the caller's: wrap it.
func Handler(l *Log) http.Handler {
	h := &handler{l: l, log: l.log}
	mux := http.NewServeMux()
	mux.Handle(PathDecisions, h.get(h.decisions))
	mux.Handle(PathDecisions+"/{index}", h.get(h.decision))
	mux.Handle(PathCheckpoints, h.get(h.checkpoints))
	mux.Handle(PathLatestCheckpoint, h.get(h.latest))
	mux.Handle(PathConsistencyProof, h.get(h.consistency))
	mux.Handle(PathRunning, h.get(h.running))
	mux.Handle(PathUIDecisions, h.page(h.uiDecisions))
	mux.Handle(PathUIDecisions+"/{index}", h.page(h.uiDecision))
	return mux
}

type handler struct {
	l   *Log
	log *slog.Logger
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(err error) error {
	return &httpError{status: http.StatusBadRequest, msg: err.Error()}
}

// get serves f for GET and HEAD, rendering its error as JSON.
func (h *handler) get(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return h.serve(f, func(w http.ResponseWriter, status int, msg string) {
		writeJSON(w, status, map[string]string{"error": msg})
	})
}

// serve serves f for GET and HEAD and renders its error with render: the
// one place that decides an error's status and message.
func (h *handler) serve(f func(http.ResponseWriter, *http.Request) error, render func(w http.ResponseWriter, status int, msg string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			err = &httpError{status: http.StatusMethodNotAllowed, msg: "the audit API is read-only"}
		} else {
			err = f(w, r)
		}
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, "internal error"
		var he *httpError
		switch {
		case errors.As(err, &he):
			status, msg = he.status, he.msg
		case errors.Is(err, ErrNotFound):
			status, msg = http.StatusNotFound, err.Error()
		case errors.Is(err, ErrOutOfRange):
			status, msg = http.StatusBadRequest, err.Error()
		default:
			h.log.ErrorContext(r.Context(), "audit API", "path", r.URL.Path, "err", err)
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
		return badRequest(err)
	}
	p, err := h.l.Search(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func uintParam(r *http.Request, name, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &httpError{status: http.StatusBadRequest, msg: name + " " + strconv.Quote(s) + ": want a non-negative integer"}
	}
	return n, nil
}

// prove answers .../{index}?treeSize=N: the record and its inclusion
// proof (for the latest checkpoint without treeSize).
func (h *handler) prove(r *http.Request) (Proved, error) {
	index, err := uintParam(r, "index", r.PathValue("index"))
	if err != nil {
		return Proved{}, err
	}
	var size uint64
	if s := r.URL.Query().Get("treeSize"); s != "" {
		if size, err = uintParam(r, "treeSize", s); err != nil {
			return Proved{}, err
		}
	}
	return h.l.Prove(r.Context(), index, size)
}

func (h *handler) decision(w http.ResponseWriter, r *http.Request) error {
	p, err := h.prove(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *handler) checkpoints(w http.ResponseWriter, r *http.Request) error {
	cps, err := h.l.store.Checkpoints(r.Context())
	if err != nil {
		return err
	}
	notes := make([]string, len(cps))
	for i, c := range cps {
		notes[i] = string(c.Signed)
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
	from, err := uintParam(r, "from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := uintParam(r, "to", q.Get("to"))
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
	writeJSON(w, http.StatusOK, map[string][]Entry{"running": es})
	return nil
}
