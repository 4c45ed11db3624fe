// Package blobstore keeps blob bytes, content-addressed, on a
// distribution/v3 storage driver (filesystem by default; S3 and others
// with the same interface).
//
// Writes never expose unverified bytes: an upload is written under its own
// path, hashed while it streams, synced, and only when its digest matches
// the one the client claimed is it moved (an atomic rename on the
// filesystem driver) to its content address.
package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

var (
	// ErrNotFound: no such blob or upload.
	ErrNotFound = errors.New("not found")
	// ErrOffset: the write does not start where the upload ends.
	ErrOffset = errors.New("offset does not match upload size")
	// ErrDigestMismatch: the uploaded bytes do not hash to the claimed digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: the caller's expected length was not what arrived.
	ErrSizeMismatch = errors.New("size mismatch")
)

// Store reads and writes blobs and uploads on a storage driver.
type Store struct {
	d storagedriver.StorageDriver

	localRoot string
	redirect  bool

	mu      sync.Mutex
	uploads map[string]*upload // in-memory hash state, a cache of what the file holds
}

// upload is the hash state of one upload session. Its mutex serialises
// writes to the session; the state is only a cache: after a restart, or on
// another replica, it is rebuilt by reading the upload's bytes.
type upload struct {
	mu   sync.Mutex
	h    hash.Hash // sha256 of the first off bytes, or nil if unknown
	off  int64
	refs int
}

// Option configures a Store.
type Option func(*Store)

// WithLocalRoot tells the Store that d is the filesystem driver rooted at
// dir, so it can sync the directory after renaming a blob into place: the
// driver's Move is a bare rename, which a power loss could undo after the
// metadata database has already recorded the blob.
func WithLocalRoot(dir string) Option { return func(s *Store) { s.localRoot = dir } }

// WithRedirects makes RedirectURL return the driver's URLs (pre-signed
// URLs on S3), so blob downloads bypass the registry.
func WithRedirects() Option { return func(s *Store) { s.redirect = true } }

// New returns a Store on d.
func New(d storagedriver.StorageDriver, opts ...Option) *Store {
	s := &Store{d: d, uploads: make(map[string]*upload)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// syncDir makes a rename into dir (a driver path) durable.
func (s *Store) syncDir(p string) error {
	if s.localRoot == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(s.localRoot, filepath.FromSlash(p)))
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// RedirectURL returns a URL from which the client of req may download
// blob d directly, or "" when the Store serves the bytes itself.
func (s *Store) RedirectURL(req *http.Request, d digest.Digest) (string, error) {
	if !s.redirect {
		return "", nil
	}
	return s.d.RedirectURL(req, blobPath(d))
}

// Ready checks that the storage answers (for readiness probes): a missing
// path is an answer.
func (s *Store) Ready(ctx context.Context) error {
	_, err := s.d.Stat(ctx, "/portcullis-ready")
	if err == nil || notFound(err) {
		return nil
	}
	return fmt.Errorf("blob storage: %w", err)
}

// Driver returns the underlying storage driver.
func (s *Store) Driver() storagedriver.StorageDriver { return s.d }

func blobPath(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join("/blobs", d.Algorithm().String(), enc[:2], enc, "data")
}

func uploadPath(id string) string { return path.Join("/uploads", id, "data") }

func notFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}

// Stat returns the size of a stored blob, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	fi, err := s.d.Stat(ctx, blobPath(d))
	if notFound(err) {
		return 0, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return fi.Size(), nil
}

// Open returns the blob's bytes from offset on.
func (s *Store) Open(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	rc, err := s.d.Reader(ctx, blobPath(d), offset)
	if notFound(err) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return rc, nil
}

// Delete removes a blob's bytes. Callers make sure nothing links it.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	err := s.d.Delete(ctx, path.Dir(blobPath(d)))
	if notFound(err) {
		return fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

func (s *Store) acquire(id string) *upload {
	s.mu.Lock()
	u, ok := s.uploads[id]
	if !ok {
		u = &upload{}
		s.uploads[id] = u
	}
	u.refs++
	s.mu.Unlock()
	u.mu.Lock()
	return u
}

func (s *Store) release(id string, u *upload, forget bool) {
	u.mu.Unlock()
	s.mu.Lock()
	u.refs--
	if forget && u.refs == 0 {
		delete(s.uploads, id)
	}
	s.mu.Unlock()
}

// UploadSize returns how many bytes an upload holds (0 for one never
// written). On a filesystem that is the file's size. An object store shows
// no object, or an older completed copy (the S3 driver completes a
// multipart upload and starts another when it appends after a small part),
// until the upload is committed: there the size is the offset of the
// latest saved hash state. The larger of the two is right on both.
func (s *Store) UploadSize(ctx context.Context, id string) (int64, error) {
	var size int64
	fi, err := s.d.Stat(ctx, uploadPath(id))
	switch {
	case err == nil:
		size = fi.Size()
	case !notFound(err):
		return 0, fmt.Errorf("stat upload %s: %w", id, err)
	}
	states, err := s.d.List(ctx, path.Dir(hashStatePath(id, 0)))
	if err != nil && !notFound(err) {
		return 0, fmt.Errorf("stat upload %s: %w", id, err)
	}
	for _, p := range states {
		if n, err := strconv.ParseInt(path.Base(p), 10, 64); err == nil {
			size = max(size, n)
		}
	}
	return size, nil
}

// Append writes r to the end of upload id. If offset >= 0 it must equal the
// upload's current size (else ErrOffset); if length >= 0 exactly that many
// bytes must arrive (else ErrSizeMismatch, and the bytes that did arrive
// stay: the upload's size is always what its status reports). It returns
// the upload's new size.
func (s *Store) Append(ctx context.Context, id string, offset, length int64, r io.Reader) (int64, error) {
	u := s.acquire(id)
	defer s.release(id, u, false)
	return s.appendLocked(ctx, id, u, offset, length, r)
}

// openUpload opens upload id's bytes for appending. Object-store drivers
// (S3) cannot append to a path that holds nothing yet: a first write starts
// the path anew.
func (s *Store) openUpload(ctx context.Context, id string) (storagedriver.FileWriter, error) {
	w, err := s.d.Writer(ctx, uploadPath(id), true)
	if notFound(err) {
		w, err = s.d.Writer(ctx, uploadPath(id), false)
	}
	if err != nil {
		return nil, fmt.Errorf("open upload %s: %w", id, err)
	}
	return w, nil
}

func (s *Store) appendLocked(ctx context.Context, id string, u *upload, offset, length int64, r io.Reader) (int64, error) {
	w, err := s.openUpload(ctx, id)
	if err != nil {
		return 0, err
	}
	size := w.Size()
	if offset >= 0 && offset != size {
		return size, errors.Join(fmt.Errorf("upload %s: write at %d, size %d: %w", id, offset, size, ErrOffset), w.Close())
	}
	if u.h == nil || u.off != size {
		if err := s.rehash(ctx, id, u, size); err != nil {
			return size, errors.Join(err, w.Close())
		}
	}
	src := r
	if length >= 0 {
		src = io.LimitReader(r, length)
	}
	n, copyErr := io.Copy(io.MultiWriter(w, u.h), src)
	u.off += n
	// Close flushes and syncs what arrived, also after an error, so the
	// file and the hash state agree.
	closeErr := w.Close()
	if closeErr != nil {
		u.h = nil
		return size, fmt.Errorf("write upload %s: %w", id, closeErr)
	}
	if n > 0 {
		s.saveHashState(ctx, id, u, size)
	}
	if copyErr != nil {
		return u.off, fmt.Errorf("write upload %s: %w", id, copyErr)
	}
	if length >= 0 && n != length {
		return u.off, fmt.Errorf("upload %s: got %d bytes, want %d: %w", id, n, length, ErrSizeMismatch)
	}
	return u.off, nil
}

func hashStatePath(id string, off int64) string {
	return path.Join("/uploads", id, "hashstates", "sha256", strconv.FormatInt(off, 10))
}

// saveHashState stores the hash state of the upload's first u.off bytes
// beside them, as distribution does, so that another replica (or this one
// after a restart) continues the upload without reading it back: an
// object store cannot read an upload before it is committed. The state of
// the previous write (at prev) is removed. Failures only cost a re-read.
func (s *Store) saveHashState(ctx context.Context, id string, u *upload, prev int64) {
	m, ok := u.h.(encoding.BinaryMarshaler)
	if !ok {
		return
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return
	}
	if err := s.d.PutContent(ctx, hashStatePath(id, u.off), state); err != nil {
		return
	}
	if prev > 0 && prev != u.off {
		_ = s.d.Delete(ctx, hashStatePath(id, prev))
	}
}

// rehash rebuilds the sha256 state of an upload: from the state saved at
// size, or else from its bytes.
func (s *Store) rehash(ctx context.Context, id string, u *upload, size int64) error {
	u.h, u.off = sha256.New(), 0
	if size == 0 {
		return nil
	}
	if state, err := s.d.GetContent(ctx, hashStatePath(id, size)); err == nil {
		if err := u.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err == nil {
			u.off = size
			return nil
		}
		u.h = sha256.New()
	}
	rc, err := s.d.Reader(ctx, uploadPath(id), 0)
	if err != nil {
		u.h = nil
		return fmt.Errorf("rehash upload %s: %w", id, err)
	}
	defer rc.Close()
	n, err := io.CopyN(u.h, rc, size)
	if err != nil {
		u.h = nil
		return fmt.Errorf("rehash upload %s: %w", id, err)
	}
	u.off = n
	return nil
}

// Commit appends r (which may be empty) to upload id, checks that the
// whole upload hashes to want, and moves it to its content address. On a
// digest mismatch the upload's bytes are discarded and nothing is stored.
// It returns the blob's size.
func (s *Store) Commit(ctx context.Context, id string, want digest.Digest, offset, length int64, r io.Reader) (int64, error) {
	u := s.acquire(id)
	forget := false
	defer func() { s.release(id, u, forget) }()
	if err := want.Validate(); err != nil {
		return 0, fmt.Errorf("commit upload %s: %w", id, err)
	}
	size, err := s.appendLocked(ctx, id, u, offset, length, r)
	if err != nil {
		return size, err
	}
	if size > 0 {
		if err := s.finish(ctx, id); err != nil {
			return size, err
		}
	}
	got, err := s.digestOf(ctx, id, u, want.Algorithm())
	if err != nil {
		return size, err
	}
	if got != want {
		forget = true
		return size, errors.Join(fmt.Errorf("upload %s: content is %s, not %s: %w", id, got, want, ErrDigestMismatch), s.discard(ctx, id))
	}
	if size == 0 {
		// Drivers do not create files for empty writes.
		if err := s.d.PutContent(ctx, uploadPath(id), nil); err != nil {
			return 0, fmt.Errorf("commit upload %s: %w", id, err)
		}
	}
	if err := s.d.Move(ctx, uploadPath(id), blobPath(want)); err != nil {
		return size, fmt.Errorf("commit upload %s as %s: %w", id, want, err)
	}
	if err := s.syncDir(path.Dir(blobPath(want))); err != nil {
		return size, fmt.Errorf("commit upload %s as %s: sync: %w", id, want, err)
	}
	forget = true
	if err := s.discard(ctx, id); err != nil {
		return size, err
	}
	return size, nil
}

// finish commits the upload's bytes: an object store's multipart upload
// becomes an object that can be read, hashed and moved.
func (s *Store) finish(ctx context.Context, id string) error {
	w, err := s.openUpload(ctx, id)
	if err != nil {
		return err
	}
	if err := w.Commit(ctx); err != nil {
		return errors.Join(fmt.Errorf("commit upload %s: %w", id, err), w.Close())
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("commit upload %s: %w", id, err)
	}
	return nil
}

func (s *Store) digestOf(ctx context.Context, id string, u *upload, alg digest.Algorithm) (digest.Digest, error) {
	if alg == digest.SHA256 && u.h != nil {
		// hash.Hash.Sum does not change the state.
		return digest.NewDigest(alg, u.h), nil
	}
	if !alg.Available() {
		return "", fmt.Errorf("upload %s: digest algorithm %q: %w", id, alg, digest.ErrDigestUnsupported)
	}
	rc, err := s.d.Reader(ctx, uploadPath(id), 0)
	if notFound(err) {
		return alg.FromBytes(nil), nil
	}
	if err != nil {
		return "", fmt.Errorf("read upload %s: %w", id, err)
	}
	defer rc.Close()
	d, err := alg.FromReader(rc)
	if err != nil {
		return "", fmt.Errorf("read upload %s: %w", id, err)
	}
	return d, nil
}

// Cancel discards an upload's bytes.
func (s *Store) Cancel(ctx context.Context, id string) error {
	u := s.acquire(id)
	defer s.release(id, u, true)
	return s.discard(ctx, id)
}

func (s *Store) discard(ctx context.Context, id string) error {
	// An object store keeps an unfinished multipart upload apart from the
	// objects Delete removes: abort it first.
	if w, err := s.d.Writer(ctx, uploadPath(id), true); err == nil {
		_ = w.Cancel(ctx)
		_ = w.Close()
	}
	err := s.d.Delete(ctx, path.Dir(uploadPath(id)))
	if err != nil && !notFound(err) {
		return fmt.Errorf("discard upload %s: %w", id, err)
	}
	return nil
}
