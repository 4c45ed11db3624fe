package audit

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PathUIDecisions is the auditors' web page: the searchable list of
// decisions; PathUIDecisions + "/{index}" shows one record with its evidence
// and its inclusion proof.
const PathUIDecisions = "/ui/decisions"

// The pages are server-rendered HTML with no script and no external
// resource; forms are plain GETs.
//
//go:embed ui/*.html
var uiFiles embed.FS

var (
	uiList     = parsePage("ui/list.html")
	uiDecision = parsePage("ui/decision.html")
	uiError    = parsePage("ui/error.html")
)

func parsePage(name string) *template.Template {
	return template.Must(template.New(name).Funcs(uiFuncs).ParseFS(uiFiles, "ui/layout.html", name))
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
		return PathUIDecisions + "/" + strconv.FormatUint(index, 10)
	},
	"searchURL": func(param, value string) string {
		return PathUIDecisions + "?" + url.Values{param: {value}}.Encode()
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

func targetText(t Target) string {
	if t.Kind != "" || t.Name != "" {
		return t.Namespace + "/" + t.Kind + "/" + t.Name
	}
	return cmp.Or(t.Repository, t.Namespace)
}

func actorText(a Actor) string {
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
	return h.serve(f, func(w http.ResponseWriter, status int, msg string) {
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
	Entries   []Entry
	// Older is the next page's URL ("" on the last page), First the first
	// page's ("" on the first page).
	Older, First string
	Actions      []string
	Verdicts     []string
}

func (h *handler) uiDecisions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := ParseFilter(q)
	if err != nil {
		return badRequest(err)
	}
	p, err := h.l.Search(r.Context(), f)
	if err != nil {
		return err
	}
	d := uiListData{
		Query:     q,
		Ascending: f.Ascending,
		Entries:   p.Entries,
		Actions:   []string{ActionPush, ActionPromote, ActionAdmit, ActionBreakGlass, ActionDelete},
		Verdicts:  []string{VerdictAllow, VerdictDeny, VerdictError},
	}
	if p.Next != "" {
		v := f.Values()
		v.Set(ParamCursor, p.Next)
		d.Older = PathUIDecisions + "?" + v.Encode()
	}
	if f.After != nil {
		v := f.Values()
		v.Del(ParamCursor)
		d.First = PathUIDecisions + "?" + v.Encode()
	}
	return renderPage(w, http.StatusOK, uiList, d)
}

type uiDecisionData struct {
	Entry    Entry
	LeafJSON string // the hashed bytes, indented for reading
	APIURL   string
	// Checkpoint is the signed note the proof is against ("" if no
	// checkpoint covers the record yet).
	Checkpoint string
	Proof      *InclusionProof
	// Verified is the server's own check of Proof against Checkpoint with
	// the log's public key; VerifyError says why it failed.
	Verified    bool
	VerifyError string
}

func (h *handler) uiDecision(w http.ResponseWriter, r *http.Request) error {
	p, err := h.prove(r)
	if err != nil {
		return err
	}
	d := uiDecisionData{
		Entry:      p.Entry,
		LeafJSON:   string(p.Entry.Leaf),
		APIURL:     PathDecisions + "/" + strconv.FormatUint(p.Entry.Index, 10),
		Checkpoint: p.Checkpoint,
		Proof:      p.Proof,
	}
	var buf bytes.Buffer
	if json.Indent(&buf, p.Entry.Leaf, "", "  ") == nil {
		d.LeafJSON = buf.String()
	}
	if size := r.URL.Query().Get("treeSize"); size != "" {
		d.APIURL += "?treeSize=" + url.QueryEscape(size) // h.prove checked it
	}
	if p.Proof != nil {
		switch {
		case h.l.verifier == nil:
			d.VerifyError = "this server has no public key to check it with"
		default:
			if _, err := VerifyProved(p, h.l.verifier); err != nil {
				d.VerifyError = err.Error()
			} else {
				d.Verified = true
			}
		}
	}
	return renderPage(w, http.StatusOK, uiDecision, d)
}
