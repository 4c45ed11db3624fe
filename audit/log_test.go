package audit

import (
	"context"
	"path/filepath"
	"testing"
)

func TestReopenKeepsTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	l, err := OpenSQLite(ctx, path, WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 21)
	cp1, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := LoadOrCreateSigner(dir) // the same key again
	if err != nil {
		t.Fatal(err)
	}
	if s2.PublicKey() != s.PublicKey() {
		t.Fatal("LoadOrCreateSigner made a new key on reopen")
	}
	l, err = OpenSQLite(ctx, path, WithSigner(s2))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es := appendN(t, l, 21, 12)
	if es[0].Index != 21 {
		t.Fatalf("first index after reopen = %d, want 21", es[0].Index)
	}
	cp2, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.ConsistencyProof(ctx, cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(cp1.Checkpoint, cp2.Checkpoint, p); err != nil {
		t.Fatalf("history before reopen is not a prefix of the one after: %v", err)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 33 || rep.Checkpoints != 2 || rep.Unanchored != 0 {
		t.Errorf("report = %+v, want size 33, 2 checkpoints, none unanchored", rep)
	}
}

func TestCloseCheckpointsUnanchoredRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	l, err := OpenSQLite(ctx, path, WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenSQLite(ctx, path, ReadOnly(), WithVerifier(s.Verifier()))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LatestCheckpoint != 5 {
		t.Errorf("latest checkpoint after Close = %d, want 5", rep.LatestCheckpoint)
	}
	if _, err := ro.Append(ctx, record(0)); err == nil {
		t.Error("Append on a read-only log succeeded")
	}
}

func TestOpenNeedsSigner(t *testing.T) {
	if _, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "a.db")); err == nil {
		t.Fatal("OpenSQLite without a signer succeeded")
	}
	if _, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "missing.db"), ReadOnly()); err == nil {
		t.Fatal("read-only open of a missing file succeeded")
	}
}
