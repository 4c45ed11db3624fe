package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error codes of the OCI Distribution Specification.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
)

// regError is what a handler returns instead of writing an error itself;
// writeError renders it as the specification's JSON.
type regError struct {
	Status  int
	Code    string
	Message string
	// Header is added to the response (e.g. Range on a 416).
	Header http.Header
	// Err is the underlying cause, logged but not shown to the client.
	Err error
}

func (e *regError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func newError(status int, code, format string, args ...any) *regError {
	return &regError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// internalError hides err from the client and logs it.
func internalError(err error) *regError {
	return &regError{Status: http.StatusInternalServerError, Code: "UNKNOWN", Message: "internal error", Err: err}
}

// panicError is the 500 a handler's recovered panic gets (I3: a gated
// write that panics is refused, and the server lives on). A handler that
// aborts on purpose (http.ErrAbortHandler) still aborts.
func panicError(err error) *regError {
	if errors.Is(err, http.ErrAbortHandler) {
		panic(http.ErrAbortHandler)
	}
	return internalError(err)
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, e *regError) {
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelError
	}
	r.log.Log(req.Context(), level, "request failed", "method", req.Method, "path", req.URL.Path, "status", e.Status, "code", e.Code, "error", e.Error())
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	if req.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message}}})
}
