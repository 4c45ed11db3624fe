package policy

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// HandlerPath is where [Handler] serves: GET HandlerPath lists the policy
// sets, POST HandlerPath/reload reloads them. Access control (policy-admin)
// is the server's, in front of the handler.
const HandlerPath = "/portcullis/v1/policies"

// HandlerOptions are the server's hooks into [Handler].
type HandlerOptions struct {
	// Caller names who sent a request, for the log ("" if unknown).
	Caller func(*http.Request) string
	// ReloadFailed is called for every refused reload (a metric).
	ReloadFailed func()
	Logger       *slog.Logger
}

// SetInfo is one policy set as [Handler] lists it.
type SetInfo struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	Source   string `json:"source,omitempty"`
}

// Handler serves the policy sets of ps and their revisions at HandlerPath
// and reloads them at HandlerPath/reload. A refused reload (a bundle that
// cannot be fetched or compiled) answers 422 with the error and the sets
// still serving.
func Handler(ps *Set, o HandlerOptions) http.Handler {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	list := func() []SetInfo {
		var out []SetInfo
		for _, b := range ps.Bindings() {
			e := b.Engine()
			out = append(out, SetInfo{Name: b.Name(), Revision: e.Revision(), Source: e.Source()})
		}
		return out
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HandlerPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"sets": list()})
	})
	mux.HandleFunc("POST "+HandlerPath+"/reload", func(w http.ResponseWriter, req *http.Request) {
		who := ""
		if o.Caller != nil {
			who = o.Caller(req)
		}
		if who == "" {
			who = "unknown"
		}
		if err := ps.ReloadAll(req.Context()); err != nil {
			if o.ReloadFailed != nil {
				o.ReloadFailed()
			}
			log.Error("policy reload failed; the previous bundles keep serving", "by", who, "err", err)
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "sets": list()})
			return
		}
		log.Info("policies reloaded", "by", who)
		writeJSON(w, http.StatusOK, map[string]any{"sets": list()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
