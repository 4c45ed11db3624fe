package yamltypes

import "fmt"

// FieldError is an error of one setting of a section, returned by a
// package's Config.Validate: Path is the setting's path inside the
// section ("protected[0].prefix"), so that whoever read the section from a
// file can say where it is ("portcullis.yaml:7:5: gate.protected[0].prefix: ...").
type FieldError struct {
	Path string
	Err  error
}

// Errorf returns a *FieldError about the setting at path.
func Errorf(path, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }
