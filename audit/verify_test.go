package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// tamperFixture writes 30 records with checkpoints every 10, closes the log
// and returns the database path and the public key.
func tamperFixture(t *testing.T) (string, note.Verifier) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	l, err := OpenSQLite(ctx, path, WithSigner(s), WithCheckpointEvery(10, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := l.Append(ctx, record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, s.Verifier()
}

func verifyFile(t *testing.T, path string, v note.Verifier) (VerifyReport, error) {
	t.Helper()
	l, err := OpenSQLite(context.Background(), path, ReadOnly(), WithVerifier(v))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Verify(context.Background())
}

func readLeaf(t *testing.T, db *sql.DB, idx int) []byte {
	t.Helper()
	var leaf []byte
	if err := db.QueryRow(`SELECT leaf FROM records WHERE idx = ?`, idx).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// editLeaf returns record idx's leaf with old replaced by new (which must occur).
func editLeaf(t *testing.T, db *sql.DB, idx int, old, new string) []byte {
	t.Helper()
	leaf := readLeaf(t, db, idx)
	if !bytes.Contains(leaf, []byte(old)) {
		t.Fatalf("record %d has no %s: %s", idx, old, leaf)
	}
	return bytes.Replace(leaf, []byte(old), []byte(new), 1)
}

func TestVerifyIntact(t *testing.T) {
	path, v := tamperFixture(t)
	rep, err := verifyFile(t, path, v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 30 || rep.Checkpoints != 3 || rep.LatestCheckpoint != 30 || rep.Unanchored != 0 {
		t.Errorf("report = %+v", rep)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	forger, _, err := note.GenerateKey(strings.NewReader(strings.Repeat("x", 64)), "portcullis/audit/forged")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		tamper     func(t *testing.T, db *sql.DB, v note.Verifier)
		wantIndex  int64
		wantCP     uint64
		wantReason string
	}{
		{
			name: "record edited",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				leaf := editLeaf(t, db, 13, `"verdict":"error"`, `"verdict":"allow"`)
				execSQL(t, db, `UPDATE records SET leaf = ?, verdict = 'allow' WHERE idx = 13`, leaf)
			},
			wantIndex: 13, wantReason: "content changed",
		},
		{
			name: "record edited with its leaf hash recomputed",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				leaf := editLeaf(t, db, 15, `"reason 15"`, `"approved"`)
				execSQL(t, db, `UPDATE records SET leaf = ?, leaf_hash = ? WHERE idx = 15`, leaf, LeafHash(leaf))
			},
			wantIndex: 10, wantCP: 20, wantReason: "do not hash to the signed checkpoint",
		},
		{
			name: "indexed column edited",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `UPDATE records SET digest = 'sha256:evil' WHERE idx = 7`)
			},
			wantIndex: 7, wantReason: "indexed columns",
		},
		{
			// A denied admission made to look as if it ran (audit running).
			name: "enforcement column edited",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `UPDATE records SET enforcement = 'warn' WHERE idx = 9`)
			},
			wantIndex: 9, wantReason: "indexed columns",
		},
		{
			name: "row deleted",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `DELETE FROM records WHERE idx = 21`)
			},
			wantIndex: 21, wantReason: "missing",
		},
		{
			name: "row deleted and later rows renumbered",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `DELETE FROM records WHERE idx = 4`)
				execSQL(t, db, `UPDATE records SET idx = idx - 1 WHERE idx > 4`)
			},
			wantIndex: 4, wantReason: "holds the record of index 5",
		},
		{
			name: "last row deleted and tree head rewound",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `DELETE FROM records WHERE idx = 29`)
				execSQL(t, db, `UPDATE tree_head SET size = 29`)
			},
			wantIndex: 29, wantCP: 30, wantReason: "missing",
		},
		{
			name: "last row deleted",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `DELETE FROM records WHERE idx = 29`)
			},
			wantIndex: 29, wantCP: 30, wantReason: "missing",
		},
		{
			name: "rows reordered",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `UPDATE records SET idx = -1 WHERE idx = 3`)
				execSQL(t, db, `UPDATE records SET idx = 3 WHERE idx = 4`)
				execSQL(t, db, `UPDATE records SET idx = 4 WHERE idx = -1`)
			},
			wantIndex: 3, wantReason: "reordered",
		},
		{
			name: "row inserted after the last record",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				execSQL(t, db, `INSERT INTO records SELECT 30, leaf, leaf_hash, time_ns, action, verdict, repository, digest, tag,
					target_repository, namespace, kind, name, identity, kubernetes_user, service_account, policy_revision, enforcement
					FROM records WHERE idx = 29`)
			},
			wantIndex: 30, wantReason: "beyond the tree head",
		},
		{
			name: "checkpoint forged with another key",
			tamper: func(t *testing.T, db *sql.DB, v note.Verifier) {
				s, err := NewSigner(forger)
				if err != nil {
					t.Fatal(err)
				}
				signed, err := signCheckpoint(Checkpoint{Origin: v.Name(), Size: 20, Root: make([]byte, 32)}, s)
				if err != nil {
					t.Fatal(err)
				}
				execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = 20`, signed)
			},
			wantIndex: -1, wantCP: 20, wantReason: "signature",
		},
		{
			name: "checkpoint body edited",
			tamper: func(t *testing.T, db *sql.DB, _ note.Verifier) {
				var n []byte
				if err := db.QueryRow(`SELECT note FROM checkpoints WHERE size = 10`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				execSQL(t, db, `UPDATE checkpoints SET note = ? WHERE size = 10`, bytes.Replace(n, []byte("\n10\n"), []byte("\n9\n"), 1))
			},
			wantIndex: -1, wantCP: 10, wantReason: "signature",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, v := tamperFixture(t)
			db := rawDB(t, path)
			tt.tamper(t, db, v)
			db.Close()
			_, err := verifyFile(t, path, v)
			var te *TamperError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
				t.Fatalf("Verify error = %v, want a *TamperError", err)
			}
			if te.Index != tt.wantIndex || te.Checkpoint != tt.wantCP || !strings.Contains(te.Reason, tt.wantReason) {
				t.Errorf("Verify = index %d, checkpoint %d, %q; want index %d, checkpoint %d, reason containing %q",
					te.Index, te.Checkpoint, te.Reason, tt.wantIndex, tt.wantCP, tt.wantReason)
			}
		})
	}
}

func TestVerifyWithWrongKey(t *testing.T) {
	path, _ := tamperFixture(t)
	other, err := LoadOrCreateSigner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifyFile(t, path, other.Verifier())
	var te *TamperError
	if !errors.As(err, &te) || te.Index != -1 {
		t.Fatalf("Verify with another key = %v, want a checkpoint failure", err)
	}
}
