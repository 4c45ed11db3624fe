// Package ui serves the auditors' read-only web pages over a decision log
// (package audit): a searchable list of decisions and one decision with its
// evidence and inclusion proof.
package ui

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/httpapi"
)

// PathDecisions is the auditors' web page: the searchable list of
// decisions; PathDecisions + "/{index}" shows one record with its evidence
// and its inclusion proof.
const PathDecisions = "/ui/decisions"

// Handler serves the pages:
//
//	GET /ui/decisions?<the filters of the API's /portcullis/v1/decisions>   searchable list
//	GET /ui/decisions/{index}                                               one record, its evidence and inclusion proof
//
// Errors are HTML pages; other methods than GET and HEAD get 405. It
// claims only these paths, so a server mounts it on "/ui/decisions" and
// "/ui/decisions/". Authentication is the caller's: wrap it. Internal
// errors are logged to log (nil: slog.Default()).
func Handler(l *audit.Log, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{l: l, log: log}
	mux := http.NewServeMux()
	mux.Handle(PathDecisions, h.page(h.decisions))
	mux.Handle(PathDecisions+"/{index}", h.page(h.decision))
	return mux
}

type handler struct {
	l   *audit.Log
	log *slog.Logger
}

// The pages are server-rendered HTML with no script and no external
// resource; forms are plain GETs.
//
//go:embed *.html
var uiFiles embed.FS

var (
	uiList     = parsePage("list.html")
	uiDecision = parsePage("decision.html")
	uiError    = parsePage("error.html")
)

func parsePage(name string) *template.Template {
	return template.Must(template.New(name).Funcs(uiFuncs).ParseFS(uiFiles, "layout.html", name))
}

// uiCSP allows the inline style sheet and nothing else: no script, no
// image, no frame, forms only to this server.
const uiCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

var uiFuncs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"short": shortDigest,
	"b64":   base64.StdEncoding.EncodeToString,
	"decisionURL": func(index uint64) string {
		return PathDecisions + "/" + strconv.FormatUint(index, 10)
	},
	"searchURL": func(param, value string) string {
		return PathDecisions + "?" + url.Values{param: {value}}.Encode()
	},
	"target":     targetText,
	"actor":      actorText,
	"severities": severities,
}

// shortDigest abbreviates "sha256:<64 hex>" to its first 12 hex digits.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12] + "…"
}

func targetText(t audit.Target) string {
	if t.Kind != "" || t.Name != "" {
		return t.Namespace + "/" + t.Kind + "/" + t.Name
	}
	return cmp.Or(t.Repository, t.Namespace)
}

func actorText(a audit.Actor) string {
	var s []string
	for _, v := range []string{a.Identity, a.KubernetesUser, a.ServiceAccount} {
		if v != "" {
			s = append(s, v)
		}
	}
	return strings.Join(s, ", ")
}

type severityCount struct {
	Severity string
	Count    int
}

// severities lists scan counts from CRITICAL down, then any other key.
func severities(counts map[string]int) []severityCount {
	rank := func(s string) int {
		if i := slices.Index([]string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}, s); i >= 0 {
			return i
		}
		return 5
	}
	out := make([]severityCount, 0, len(counts))
	for s, n := range counts {
		out = append(out, severityCount{s, n})
	}
	slices.SortFunc(out, func(a, b severityCount) int {
		return cmp.Or(cmp.Compare(rank(a.Severity), rank(b.Severity)), strings.Compare(a.Severity, b.Severity))
	})
	return out
}

// page serves f for GET and HEAD, rendering its error as an HTML page.
func (h *handler) page(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return httpapi.Serve(h.log, f, func(w http.ResponseWriter, status int, msg string) {
		data := struct {
			Status     int
			StatusText string
			Message    string
		}{status, http.StatusText(status), msg}
		if err := renderPage(w, status, uiError, data); err != nil {
			http.Error(w, msg, status)
		}
	})
}

// renderPage renders t completely before writing anything, so that a
// template error is still an error response.
func renderPage(w http.ResponseWriter, status int, t *template.Template, data any) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render %s: %w", t.Name(), err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", uiCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // a failure is the client's
	return nil
}

type uiListData struct {
	Query     url.Values // as given, to fill the form in again
	Ascending bool
	Entries   []audit.Entry
	// Older is the next page's URL ("" on the last page), First the first
	// page's ("" on the first page).
	Older, First string
	Actions      []string
	Verdicts     []string
}

func (h *handler) decisions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := httpapi.ParseFilter(q)
	if err != nil {
		return httpapi.BadRequest(err)
	}
	p, err := h.l.Search(r.Context(), f)
	if err != nil {
		return err
	}
	d := uiListData{
		Query:     q,
		Ascending: f.Ascending,
		Entries:   p.Entries,
		Actions:   []string{audit.ActionPush, audit.ActionPromote, audit.ActionAdmit, audit.ActionBreakGlass, audit.ActionDelete},
		Verdicts:  []string{audit.VerdictAllow, audit.VerdictDeny, audit.VerdictError},
	}
	if p.Next != "" {
		v := httpapi.FilterValues(f)
		v.Set(httpapi.ParamCursor, p.Next)
		d.Older = PathDecisions + "?" + v.Encode()
	}
	if f.After != nil {
		v := httpapi.FilterValues(f)
		v.Del(httpapi.ParamCursor)
		d.First = PathDecisions + "?" + v.Encode()
	}
	return renderPage(w, http.StatusOK, uiList, d)
}

type uiDecisionData struct {
	Entry    audit.Entry
	LeafJSON string // the hashed bytes, indented for reading
	APIURL   string
	// Checkpoint is the signed note the proof is against ("" if no
	// checkpoint covers the record yet).
	Checkpoint string
	Proof      *audit.InclusionProof
	// Verified is the server's own check of Proof against Checkpoint with
	// the log's public key; VerifyError says why it failed.
	Verified    bool
	VerifyError string
}

func (h *handler) decision(w http.ResponseWriter, r *http.Request) error {
	p, err := httpapi.Prove(h.l, r)
	if err != nil {
		return err
	}
	d := uiDecisionData{
		Entry:      p.Entry,
		LeafJSON:   string(p.Entry.Leaf),
		APIURL:     httpapi.PathDecisions + "/" + strconv.FormatUint(p.Entry.Index, 10),
		Checkpoint: p.Checkpoint,
		Proof:      p.Proof,
	}
	var buf bytes.Buffer
	if json.Indent(&buf, p.Entry.Leaf, "", "  ") == nil {
		d.LeafJSON = buf.String()
	}
	if size := r.URL.Query().Get("treeSize"); size != "" {
		d.APIURL += "?treeSize=" + url.QueryEscape(size) // httpapi.Prove checked it
	}
	if p.Proof != nil {
		switch {
		case h.l.Verifier() == nil:
			d.VerifyError = "this server has no public key to check it with"
		default:
			if _, err := audit.VerifyProved(p, h.l.Verifier()); err != nil {
				d.VerifyError = err.Error()
			} else {
				d.Verified = true
			}
		}
	}
	return renderPage(w, http.StatusOK, uiDecision, d)
}
