package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// In-toto Statement types (the "_type" field). They equal in-toto-golang's
// in_toto.StatementInTotoV01 and in_toto.StatementInTotoV1, which this
// package does not import: that package pulls in key management, protobuf
// and file matching that a parser does not need.
const (
	StatementV01 = "https://in-toto.io/Statement/v0.1"
	StatementV1  = "https://in-toto.io/Statement/v1"
)

// Statement is an in-toto Statement v0.1 or v1. The predicate is kept as raw
// JSON; [ParsePredicate] decodes it.
type Statement struct {
	// Type is StatementV01 or StatementV1.
	Type string `json:"_type"`
	// Subject lists the artifacts the statement is about; never empty.
	Subject []Subject `json:"subject"`
	// PredicateType is a URI naming the predicate's schema.
	PredicateType string `json:"predicateType"`
	// Predicate is the raw predicate JSON, absent if the statement has none.
	Predicate json.RawMessage `json:"predicate,omitempty"`
}

// Subject is one artifact a statement is about.
type Subject struct {
	Name string `json:"name,omitempty"`
	// Digest maps an algorithm ("sha256", "sha512", "gitCommit"...) to a
	// lowercase hex value. Never empty.
	Digest map[string]string `json:"digest"`
}

// parseStatement is ParseStatement without its guard.
func parseStatement(payload []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("attest: in-toto statement: %w", err)
	}
	switch st.Type {
	case StatementV01, StatementV1:
	case "":
		return nil, errors.New("attest: in-toto statement: _type is missing")
	default:
		return nil, fmt.Errorf("attest: in-toto statement: unknown _type %q", st.Type)
	}
	if st.PredicateType == "" {
		return nil, errors.New("attest: in-toto statement: predicateType is missing")
	}
	if len(st.Subject) == 0 {
		return nil, errors.New("attest: in-toto statement: no subject")
	}
	for i, s := range st.Subject {
		if err := checkDigestSet(s.Digest); err != nil {
			return nil, fmt.Errorf("attest: in-toto statement: subject[%d] %q: %w", i, s.Name, err)
		}
	}
	if isJSONNull(st.Predicate) {
		st.Predicate = nil
	}
	return &st, nil
}

// HasSubjectDigest reports whether a subject of the statement has digest d,
// given in OCI form "algorithm:hex" (for example "sha256:4f5e..."). The hex
// value is compared case-insensitively; an empty or malformed d matches
// nothing.
func (s *Statement) HasSubjectDigest(d string) bool {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || hex == "" {
		return false
	}
	for _, sub := range s.Subject {
		if v, ok := sub.Digest[alg]; ok && strings.EqualFold(v, hex) {
			return true
		}
	}
	return false
}

func checkDigestSet(d map[string]string) error {
	if len(d) == 0 {
		return errors.New("digest is empty")
	}
	for alg, v := range d {
		if alg == "" {
			return errors.New("digest has an empty algorithm name")
		}
		if v == "" {
			return fmt.Errorf("digest %q has an empty value", alg)
		}
	}
	return nil
}

// isJSONNull reports whether raw is absent, blank or the JSON null.
func isJSONNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
