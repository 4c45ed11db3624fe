package audit

import (
	"errors"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Option configures a Log.
type Option func(*options) error

type options struct {
	signer   *Signer
	verifier note.Verifier
	every    int
	interval time.Duration
	maxBatch int
	logger   *slog.Logger
	readOnly bool
}

func defaultOptions() options {
	return options{every: 1000, interval: time.Minute, maxBatch: 1000, logger: slog.Default()}
}

// WithSigner sets the checkpoint signer; required unless ReadOnly. Its
// verifier is also used by Verify.
func WithSigner(s *Signer) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("audit: nil signer")
		}
		o.signer = s
		return nil
	}
}

// WithVerifier sets the key Verify checks checkpoints with (default: the
// signer's). An auditor passes the public key they were given, not the one
// found next to the data.
func WithVerifier(v note.Verifier) Option {
	return func(o *options) error {
		if v == nil {
			return errors.New("audit: nil verifier")
		}
		o.verifier = v
		return nil
	}
}

// WithCheckpointEvery makes Append sign a checkpoint once n records were
// appended since the last one, or once d passed and there are new records
// (Run also checkpoints idle logs every d). Defaults: 1000 records, 1 minute.
func WithCheckpointEvery(n int, d time.Duration) Option {
	return func(o *options) error {
		if n < 1 || d <= 0 {
			return errors.New("audit: checkpoint interval must be at least 1 record and a positive duration")
		}
		o.every, o.interval = n, d
		return nil
	}
}

// WithMaxBatch caps how many concurrent appends are committed in one
// transaction (default 1000).
func WithMaxBatch(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return errors.New("audit: max batch must be at least 1")
		}
		o.maxBatch = n
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("audit: nil logger")
		}
		o.logger = l
		return nil
	}
}

// ReadOnly opens the log for queries, proofs and Verify only (for auditors
// working on a copy of the data directory). No signer is needed.
func ReadOnly() Option {
	return func(o *options) error { o.readOnly = true; return nil }
}
