package registry_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
)

func TestAPIBlobUploadDigestMismatch(t *testing.T) {
	h := newAPIHarness(t)
	tests := []struct {
		name       string
		monolithic bool
		chunks     [][]byte // PATCHed before the closing PUT
		last       []byte   // the body of the POST or the closing PUT
	}{
		{name: "monolithic", monolithic: true, last: []byte("monolithic content")},
		{name: "chunked", chunks: [][]byte{[]byte("first "), []byte("second")}},
		{name: "chunked, last chunk in the PUT", chunks: [][]byte{[]byte("first ")}, last: []byte("last")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fmt.Sprintf("mismatch/%d", i)
			claimed := digest.FromString("not the content")
			actual := digest.FromBytes(append(bytes.Join(tt.chunks, nil), tt.last...))
			var r apiResponse
			loc := ""
			if tt.monolithic {
				r = h.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+claimed.String(), tt.last)
			} else {
				loc = h.startUpload(t, repo)
				for _, c := range tt.chunks {
					wantStatus(t, h.do(t, http.MethodPatch, loc, c), http.StatusAccepted)
				}
				r = h.do(t, http.MethodPut, loc+"?digest="+claimed.String(), tt.last)
			}
			wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
			for _, d := range []digest.Digest{claimed, actual} {
				wantError(t, h.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
				if _, err := h.blobs.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
					t.Errorf("blob store Stat(%s): error %v, want ErrNotFound", d, err)
				}
			}
			if loc != "" {
				// The bytes are gone, so is the session.
				wantError(t, h.do(t, http.MethodGet, loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			}
		})
	}
}

func TestAPIChunkOutOfOrder(t *testing.T) {
	h := newAPIHarness(t)
	first, second := []byte("01234"), []byte("56789")
	tests := []struct {
		name         string
		contentRange string
		wantRange    string // the Range header of the 416, if it reports progress
	}{
		{"gap", "10-14", "0-4"},
		{"overlap", "2-6", "0-4"},
		{"restart at zero", "0-4", "0-4"},
		{"malformed", "five-nine", ""},
		{"range longer than the body", "5-20", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fmt.Sprintf("chunks/%d", i)
			loc := h.startUpload(t, repo)
			r := h.do(t, http.MethodPatch, loc, first, "Content-Range", "0-4")
			wantStatus(t, r, http.StatusAccepted)
			if got := r.header.Get("Range"); got != "0-4" {
				t.Fatalf("Range after the first chunk %q, want 0-4", got)
			}

			r = h.do(t, http.MethodPatch, loc, second, "Content-Range", tt.contentRange)
			wantError(t, r, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
			if tt.wantRange != "" && r.header.Get("Range") != tt.wantRange {
				t.Errorf("416 Range header %q, want %q", r.header.Get("Range"), tt.wantRange)
			}

			// The upload is intact and continues at the right offset.
			r = h.do(t, http.MethodGet, loc, nil)
			wantStatus(t, r, http.StatusNoContent)
			if got := r.header.Get("Range"); got != "0-4" {
				t.Fatalf("upload status Range %q after the rejected chunk, want 0-4", got)
			}
			r = h.do(t, http.MethodPatch, loc, second, "Content-Range", "5-9")
			wantStatus(t, r, http.StatusAccepted)
			if got := r.header.Get("Range"); got != "0-9" {
				t.Fatalf("Range after the second chunk %q, want 0-9", got)
			}
			d := digest.FromBytes(append(slices.Clone(first), second...))
			wantStatus(t, h.do(t, http.MethodPut, loc+"?digest="+d.String(), nil), http.StatusCreated)
			got := h.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil)
			wantStatus(t, got, http.StatusOK)
			if string(got.body) != "0123456789" {
				t.Fatalf("blob %q, want 0123456789", got.body)
			}
		})
	}
}

func TestAPIUploadUnknown(t *testing.T) {
	h := newAPIHarness(t)
	const unknown = "/v2/app/blobs/uploads/7d8f3c2a-0000-4000-8000-000000000000"
	d := digest.FromString("x").String()
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{"status", http.MethodGet, unknown},
		{"chunk", http.MethodPatch, unknown},
		{"close", http.MethodPut, unknown + "?digest=" + d},
		{"cancel", http.MethodDelete, unknown},
		{"not a uuid", http.MethodPatch, "/v2/app/blobs/uploads/..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, []byte("x")), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		})
	}
}

func TestAPIUploadOtherRepository(t *testing.T) {
	h := newAPIHarness(t)
	loc := h.startUpload(t, "a")
	stolen := strings.Replace(loc, "/v2/a/", "/v2/b/", 1)
	content := []byte("content")
	d := digest.FromBytes(content)
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{"status", http.MethodGet, stolen},
		{"chunk", http.MethodPatch, stolen},
		{"close", http.MethodPut, stolen + "?digest=" + d.String()},
		{"cancel", http.MethodDelete, stolen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, content), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		})
	}
	t.Run("the upload is untouched", func(t *testing.T) {
		r := h.do(t, http.MethodGet, loc, nil)
		wantStatus(t, r, http.StatusNoContent)
		if got := r.header.Get("Range"); got != "0-0" {
			t.Fatalf("Range %q, want 0-0: another repository's requests wrote to the upload", got)
		}
		wantStatus(t, h.do(t, http.MethodPatch, loc, content), http.StatusAccepted)
		wantStatus(t, h.do(t, http.MethodPut, loc+"?digest="+d.String(), nil), http.StatusCreated)
		wantStatus(t, h.do(t, http.MethodGet, "/v2/a/blobs/"+d.String(), nil), http.StatusOK)
		wantError(t, h.do(t, http.MethodGet, "/v2/b/blobs/"+d.String(), nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

func TestAPIBlobRange(t *testing.T) {
	h := newAPIHarness(t)
	content := make([]byte, 100)
	for i := range content {
		content[i] = byte('a' + i%26)
	}
	path := "/v2/app/blobs/" + h.pushBlob(t, "app", content).Digest.String()
	tests := []struct {
		name         string
		method       string
		rangeHeader  string
		status       int
		contentRange string
		want         []byte
	}{
		{"no Range", http.MethodGet, "", http.StatusOK, "", content},
		{"first bytes", http.MethodGet, "bytes=0-9", http.StatusPartialContent, "bytes 0-9/100", content[:10]},
		{"middle", http.MethodGet, "bytes=40-49", http.StatusPartialContent, "bytes 40-49/100", content[40:50]},
		{"open end", http.MethodGet, "bytes=90-", http.StatusPartialContent, "bytes 90-99/100", content[90:]},
		{"suffix", http.MethodGet, "bytes=-5", http.StatusPartialContent, "bytes 95-99/100", content[95:]},
		{"suffix longer than the blob", http.MethodGet, "bytes=-500", http.StatusPartialContent, "bytes 0-99/100", content},
		{"end past the blob", http.MethodGet, "bytes=95-200", http.StatusPartialContent, "bytes 95-99/100", content[95:]},
		{"last byte", http.MethodGet, "bytes=99-99", http.StatusPartialContent, "bytes 99-99/100", content[99:]},
		{"HEAD", http.MethodHead, "bytes=0-9", http.StatusPartialContent, "bytes 0-9/100", nil},
		{"start at the size", http.MethodGet, "bytes=100-", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"start past the size", http.MethodGet, "bytes=1000-1001", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"end before start", http.MethodGet, "bytes=50-0", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"empty suffix", http.MethodGet, "bytes=-0", http.StatusRequestedRangeNotSatisfiable, "bytes */100", nil},
		{"several ranges are ignored", http.MethodGet, "bytes=0-1,5-6", http.StatusOK, "", content},
		{"other units are ignored", http.MethodGet, "items=0-1", http.StatusOK, "", content},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header []string
			if tt.rangeHeader != "" {
				header = []string{"Range", tt.rangeHeader}
			}
			r := h.do(t, tt.method, path, nil, header...)
			wantStatus(t, r, tt.status)
			if got := r.header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tt.contentRange)
			}
			if tt.status == http.StatusRequestedRangeNotSatisfiable {
				return
			}
			if tt.method == http.MethodHead {
				if len(r.body) != 0 || r.header.Get("Content-Length") != "10" {
					t.Errorf("HEAD: body of %d bytes, Content-Length %q; want none and 10", len(r.body), r.header.Get("Content-Length"))
				}
				return
			}
			if !bytes.Equal(r.body, tt.want) {
				t.Errorf("body %q, want %q", r.body, tt.want)
			}
			if got, want := r.header.Get("Content-Length"), fmt.Sprint(len(tt.want)); got != want {
				t.Errorf("Content-Length %s, want %s", got, want)
			}
		})
	}
}
