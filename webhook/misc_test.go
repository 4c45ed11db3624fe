package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func httptestGet(h http.Handler, path string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}

func TestParseReference(t *testing.T) {
	d := fakeDigest("x")
	tests := []struct {
		in      string
		want    reference
		wantErr bool
	}{
		{in: "nginx", want: reference{Name: "nginx"}},
		{in: "nginx:1.27", want: reference{Name: "nginx", Tag: "1.27"}},
		{in: "localhost:5000/prod/app", want: reference{Name: "localhost:5000/prod/app"}},
		{in: "localhost:5000/prod/app:v1@" + d.String(), want: reference{Name: "localhost:5000/prod/app", Tag: "v1", Digest: d}},
		{in: "app@" + d.String(), want: reference{Name: "app", Digest: d}},
		{in: "", wantErr: true},
		{in: "app:", wantErr: true},
		{in: "app@sha256:abc", wantErr: true},
		{in: ":v1", wantErr: true},
		{in: "a b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseReference(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("got %+v, %v", got, err)
			}
		})
	}
}

// FuzzReview feeds arbitrary bodies to both endpoints: no panic, and
// either a review answer or a 4xx.
func FuzzReview(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "admission", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}`))
	h := newHandler(f, Config{Timeout: time.Second}, newFakeDecider(), &fakeResolver{})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/validate", "/mutate"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			h.ServeHTTP(rec, req)
			if rec.Code != 200 && (rec.Code < 400 || rec.Code >= 500) {
				t.Fatalf("%s: status %d", path, rec.Code)
			}
		}
	})
}
