package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
)

// Client reads a remote log through the API of Handler. It trusts the
// server for nothing that it verifies: Verify downloads every record and
// checkpoint and checks them locally against the verifier's key.
type Client struct {
	base     string
	verifier note.Verifier
	hc       *http.Client
}

// NewClient returns a client of the server at baseURL (e.g.
// "https://portcullis.example.com"). verifier may be nil when Verify and
// proof checks are not needed; hc nil means http.DefaultClient.
func NewClient(baseURL string, verifier note.Verifier, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), verifier: verifier, hc: hc}
}

// get fetches path?q and decodes JSON into v (or returns the body if v is
// a *[]byte).
func (c *Client) get(ctx context.Context, path string, q url.Values, v any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		err := fmt.Errorf("GET %s: %s: %s", path, resp.Status, msg)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w (%w)", err, audit.ErrNotFound)
		}
		return err
	}
	if b, ok := v.(*[]byte); ok {
		*b = body
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// Search returns one page of records matching f.
func (c *Client) Search(ctx context.Context, f audit.Filter) (audit.Page, error) {
	var p audit.Page
	err := c.get(ctx, PathDecisions, FilterValues(f), &p)
	return p, err
}

// Running returns the latest allowed admission per workload and image.
func (c *Client) Running(ctx context.Context, namespace string) ([]audit.Entry, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set(ParamNamespace, namespace)
	}
	var out struct {
		Running []audit.Entry `json:"running"`
	}
	err := c.get(ctx, PathRunning, q, &out)
	return out.Running, err
}

// Prove returns record index with its inclusion proof against the
// checkpoint of treeSize records (0: the latest). Check it with VerifyProved.
func (c *Client) Prove(ctx context.Context, index, treeSize uint64) (audit.Proved, error) {
	q := url.Values{}
	if treeSize > 0 {
		q.Set("treeSize", strconv.FormatUint(treeSize, 10))
	}
	var p audit.Proved
	err := c.get(ctx, PathDecisions+"/"+strconv.FormatUint(index, 10), q, &p)
	return p, err
}

// Checkpoints returns every signed checkpoint note.
func (c *Client) Checkpoints(ctx context.Context) ([][]byte, error) {
	var out struct {
		Checkpoints []string `json:"checkpoints"`
	}
	if err := c.get(ctx, PathCheckpoints, nil, &out); err != nil {
		return nil, err
	}
	notes := make([][]byte, len(out.Checkpoints))
	for i, n := range out.Checkpoints {
		notes[i] = []byte(n)
	}
	return notes, nil
}

// LatestCheckpoint returns the latest signed checkpoint note.
func (c *Client) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var b []byte
	err := c.get(ctx, PathLatestCheckpoint, nil, &b)
	return b, err
}

// ConsistencyProof fetches a consistency proof between two tree sizes.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) (audit.ConsistencyProof, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	var p audit.ConsistencyProof
	err := c.get(ctx, PathConsistencyProof, q, &p)
	return p, err
}

// Export writes the records matching f as JSON lines, oldest first.
func (c *Client) Export(ctx context.Context, w io.Writer, f audit.Filter) error {
	return audit.ExportPages(ctx, w, f, c.Search)
}

// Verify downloads every checkpoint and every record and checks them
// locally (audit.VerifyRemote); it needs the client's verifier.
func (c *Client) Verify(ctx context.Context) (audit.VerifyReport, error) {
	if c.verifier == nil {
		return audit.VerifyReport{}, errors.New("audit verify: no public key")
	}
	return audit.VerifyRemote(ctx, c, c.verifier)
}
