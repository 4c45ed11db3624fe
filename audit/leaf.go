package audit

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"
)

// hasher is the RFC 6962 tree hasher (SHA-256, 0x00 leaf and 0x01 node prefixes).
var hasher = rfc6962.DefaultHasher

// Entry is a Record at its place in the log.
type Entry struct {
	// Index is the leaf index, from 0.
	Index uint64 `json:"index"`
	// Leaf is the exact leaf data that was hashed: the JSON document
	// {"index":N,"record":{...}} (base64 in JSON).
	Leaf []byte `json:"leaf"`
	// LeafHash is SHA-256(0x00 || Leaf), the RFC 6962 leaf hash.
	LeafHash []byte `json:"leafHash"`
	// Record is Leaf's record, decoded for convenience.
	Record Record `json:"record"`
}

// leafDoc is the hashed form of a record: its index is inside, so that a
// record moved to another position no longer matches its hash.
type leafDoc struct {
	Index  uint64 `json:"index"`
	Record Record `json:"record"`
}

// encodeLeaf returns the leaf data of r at index i. The bytes are stored and
// served as they are; verifiers hash them, never a re-encoding.
func encodeLeaf(i uint64, r Record) ([]byte, error) {
	b, err := json.Marshal(leafDoc{Index: i, Record: r})
	if err != nil {
		return nil, fmt.Errorf("encode record %d: %w", i, err)
	}
	return b, nil
}

// decodeLeaf parses leaf data.
func decodeLeaf(leaf []byte) (uint64, Record, error) {
	var d leafDoc
	dec := json.NewDecoder(bytes.NewReader(leaf))
	if err := dec.Decode(&d); err != nil {
		return 0, Record{}, fmt.Errorf("decode leaf: %w", err)
	}
	return d.Index, d.Record, nil
}

// LeafHash returns the RFC 6962 leaf hash of leaf data: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) []byte { return hasher.HashLeaf(leaf) }

// Columns are the queryable fields of a record, stored next to its leaf.
// Verify checks they still match the leaf.
type Columns struct {
	TimeNs         int64
	Action         string
	Verdict        string
	Repository     string
	Digest         string
	Tag            string
	TargetRepo     string
	Namespace      string
	Kind           string
	Name           string
	Identity       string
	KubernetesUser string
	ServiceAccount string
	PolicyRevision string
	Enforcement    string
}

// ColumnsOf returns the queryable fields of r.
func ColumnsOf(r Record) Columns {
	return Columns{
		TimeNs:         r.Time.UnixNano(),
		Action:         r.Action,
		Verdict:        r.Verdict,
		Repository:     r.Subject.Repository,
		Digest:         r.Subject.Digest,
		Tag:            r.Subject.Tag,
		TargetRepo:     r.Target.Repository,
		Namespace:      r.Target.Namespace,
		Kind:           r.Target.Kind,
		Name:           r.Target.Name,
		Identity:       r.Actor.Identity,
		KubernetesUser: r.Actor.KubernetesUser,
		ServiceAccount: r.Actor.ServiceAccount,
		PolicyRevision: r.PolicyRevision,
		Enforcement:    r.Enforcement,
	}
}
