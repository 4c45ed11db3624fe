package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SignedCheckpoint is a checkpoint and its signed note.
type SignedCheckpoint struct {
	Checkpoint
	// Note is the signed note: the checkpoint body, a blank line and the
	// signature lines. This is what auditors keep and verify.
	Note []byte `json:"note"`
}

// Checkpoint signs and stores a checkpoint of the current tree, unless the
// latest checkpoint already covers every record.
func (l *Log) Checkpoint(ctx context.Context) (SignedCheckpoint, error) {
	if l.opts.readOnly {
		return SignedCheckpoint{}, fmt.Errorf("audit checkpoint: %w", errReadOnly)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hasCP && l.lastCP == l.rng.End() {
		return l.LatestCheckpoint(ctx)
	}
	return l.checkpointLocked(ctx)
}

func (l *Log) checkpointLocked(ctx context.Context) (SignedCheckpoint, error) {
	c := Checkpoint{Origin: l.signer.Name(), Size: l.rng.End(), Root: rootOf(l.rng)}
	signed, err := signCheckpoint(c, l.signer)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if err := l.store.AddCheckpoint(ctx, c.Size, signed); err != nil {
		return SignedCheckpoint{}, err
	}
	l.lastCP, l.hasCP, l.lastCPAt = c.Size, true, time.Now()
	l.log.Debug("audit checkpoint", "size", c.Size)
	return SignedCheckpoint{Checkpoint: c, Note: signed}, nil
}

// maybeCheckpointLocked checkpoints after a commit when enough records or
// time accumulated. A failure is logged, not returned: the records are
// durable, and the next commit (or Run) tries again.
func (l *Log) maybeCheckpointLocked(ctx context.Context) {
	size := l.rng.End()
	if size == l.lastCP {
		return
	}
	if size-l.lastCP < uint64(l.opts.every) && time.Since(l.lastCPAt) < l.opts.interval {
		return
	}
	if _, err := l.checkpointLocked(ctx); err != nil {
		l.log.Error("audit checkpoint failed", "size", size, "err", err)
	}
}

// Run checkpoints new records every checkpoint interval until ctx ends, so
// that an idle log still gets its last records signed. It returns nil.
func (l *Log) Run(ctx context.Context) error {
	if l.opts.readOnly {
		return nil
	}
	t := time.NewTicker(l.opts.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.mu.Lock()
			if !l.hasCP || l.rng.End() > l.lastCP {
				if _, err := l.checkpointLocked(ctx); err != nil {
					l.log.Error("audit checkpoint failed", "err", err)
				}
			}
			l.mu.Unlock()
		}
	}
}

// LatestCheckpoint returns the stored checkpoint of the largest tree, as
// stored (its signature is not checked here: Verify and auditors do that).
func (l *Log) LatestCheckpoint(ctx context.Context) (SignedCheckpoint, error) {
	cp, err := l.store.Checkpoint(ctx, 0)
	if errors.Is(err, ErrNotFound) {
		return SignedCheckpoint{}, fmt.Errorf("audit: no checkpoint yet: %w", ErrNotFound)
	}
	if err != nil {
		return SignedCheckpoint{}, err
	}
	return parseStored(cp)
}

// Checkpoints returns every stored checkpoint by increasing size.
func (l *Log) Checkpoints(ctx context.Context) ([]SignedCheckpoint, error) {
	cps, err := l.store.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SignedCheckpoint, 0, len(cps))
	for _, c := range cps {
		sc, err := parseStored(c)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// CheckpointNotes returns every stored checkpoint note, by increasing
// size, as stored: unparsed and unchecked, for a remote verifier to check.
func (l *Log) CheckpointNotes(ctx context.Context) ([][]byte, error) {
	cps, err := l.store.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	notes := make([][]byte, len(cps))
	for i, c := range cps {
		notes[i] = c.Signed
	}
	return notes, nil
}

// parseStored parses a stored note's body without checking its signature.
func parseStored(c StoredCheckpoint) (SignedCheckpoint, error) {
	text, _, ok := strings.Cut(string(c.Signed), "\n\n")
	if !ok {
		return SignedCheckpoint{}, fmt.Errorf("%w: stored checkpoint %d is not a signed note", ErrBadCheckpoint, c.Size)
	}
	cp, err := parseBody(text + "\n")
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("stored checkpoint %d: %w", c.Size, err)
	}
	return SignedCheckpoint{Checkpoint: cp, Note: c.Signed}, nil
}
