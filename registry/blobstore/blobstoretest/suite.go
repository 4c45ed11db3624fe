// Package blobstoretest is the conformance suite for blobstore.Store on a
// storage driver: every driver the registry supports runs it.
package blobstoretest

import (
	"bytes"
	_ "crypto/sha256" // digest.SHA256 must be available
	_ "crypto/sha512" // digest.SHA512 must be available
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
)

// Run runs the suite. newStore is called once per subtest and returns a
// Store on a new, empty driver; a second Store over the same driver
// (blobstore.New(s.Driver())) stands for a restarted process or another
// replica.
func Run(t *testing.T, newStore func(t *testing.T) *blobstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s *blobstore.Store)
	}{
		{"CommitMonolithic", testCommitMonolithic},
		{"CommitSameBlobTwice", testCommitSameBlobTwice},
		{"DigestMismatch", testDigestMismatch},
		{"ChunkedAppend", testChunkedAppend},
		{"WrongOffset", testWrongOffset},
		{"SizeMismatch", testSizeMismatch},
		{"EmptyBlob", testEmptyBlob},
		{"SHA512", testSHA512},
		{"InvalidDigest", testInvalidDigest},
		{"Cancel", testCancel},
		{"Restart", testRestart},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentAppendsAtOneOffset", testConcurrentAppendsAtOneOffset},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

// data returns n deterministic pseudo-random bytes.
func data(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// wantBlob checks that d is stored with exactly content, reading it from
// several offsets.
func wantBlob(t *testing.T, s *blobstore.Store, d digest.Digest, content []byte) {
	t.Helper()
	size, err := s.Stat(t.Context(), d)
	if err != nil {
		t.Fatalf("Stat(%s): %v", d, err)
	}
	if size != int64(len(content)) {
		t.Fatalf("Stat(%s) = %d, want %d", d, size, len(content))
	}
	n := len(content)
	for _, off := range slices.Compact([]int{0, min(1, n), n / 2, max(n-1, 0), n}) {
		rc, err := s.Open(t.Context(), d, int64(off))
		if err != nil {
			t.Fatalf("Open(%s, %d): %v", d, off, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading %s from %d: %v", d, off, err)
		}
		if !bytes.Equal(got, content[off:]) {
			t.Fatalf("Open(%s, %d) read %d bytes, want the %d bytes stored from there", d, off, len(got), n-off)
		}
	}
}

func wantNoBlob(t *testing.T, s *blobstore.Store, d digest.Digest) {
	t.Helper()
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat(%s): error %v, want ErrNotFound", d, err)
	}
}

func wantUploadSize(t *testing.T, s *blobstore.Store, id string, want int64) {
	t.Helper()
	got, err := s.UploadSize(t.Context(), id)
	if err != nil {
		t.Fatalf("UploadSize(%s): %v", id, err)
	}
	if got != want {
		t.Fatalf("UploadSize(%s) = %d, want %d", id, got, want)
	}
}

func appendChunk(t *testing.T, s *blobstore.Store, id string, offset int64, chunk []byte) int64 {
	t.Helper()
	size, err := s.Append(t.Context(), id, offset, int64(len(chunk)), bytes.NewReader(chunk))
	if err != nil {
		t.Fatalf("Append(%s, offset %d, %d bytes): %v", id, offset, len(chunk), err)
	}
	return size
}

func commit(t *testing.T, s *blobstore.Store, id string, d digest.Digest, offset int64, last []byte) int64 {
	t.Helper()
	size, err := s.Commit(t.Context(), id, d, offset, int64(len(last)), bytes.NewReader(last))
	if err != nil {
		t.Fatalf("Commit(%s, %s): %v", id, d, err)
	}
	return size
}

func testCommitMonolithic(t *testing.T, s *blobstore.Store) {
	tests := []struct {
		name           string
		size           int
		offset, length int64 // -1: unknown, else taken from size
	}{
		{"one byte", 1, 0, 0},
		{"small", 100, 0, 0},
		{"over a MiB, odd size", 1<<20 + 7, 0, 0},
		{"unknown offset and length", 4096, -1, -1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := data(tt.size, uint64(i))
			d := digest.FromBytes(content)
			id := fmt.Sprintf("monolithic-%d", i)
			length := int64(len(content))
			if tt.length < 0 {
				length = -1
			}
			size, err := s.Commit(t.Context(), id, d, tt.offset, length, bytes.NewReader(content))
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if size != int64(len(content)) {
				t.Fatalf("Commit = %d, want %d", size, len(content))
			}
			wantBlob(t, s, d, content)
			wantUploadSize(t, s, id, 0)
		})
	}
}

func testCommitSameBlobTwice(t *testing.T, s *blobstore.Store) {
	content := data(1000, 1)
	d := digest.FromBytes(content)
	commit(t, s, "first", d, 0, content)
	commit(t, s, "second", d, 0, content)
	wantBlob(t, s, d, content)
	wantUploadSize(t, s, "second", 0)
}

func testDigestMismatch(t *testing.T, s *blobstore.Store) {
	tests := []struct {
		name   string
		chunks [][]byte // appended before the commit, which sends last
		last   []byte
	}{
		{"monolithic", nil, data(500, 1)},
		{"chunked", [][]byte{data(300, 2), data(200, 3)}, nil},
		{"chunked with a final chunk", [][]byte{data(300, 4)}, data(10, 5)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("mismatch-%d", i)
			var all []byte
			for _, c := range tt.chunks {
				appendChunk(t, s, id, int64(len(all)), c)
				all = append(all, c...)
			}
			all = append(all, tt.last...)
			actual := digest.FromBytes(all)
			claimed := digest.FromString("something else")
			_, err := s.Commit(t.Context(), id, claimed, -1, int64(len(tt.last)), bytes.NewReader(tt.last))
			if !errors.Is(err, blobstore.ErrDigestMismatch) {
				t.Fatalf("Commit: error %v, want ErrDigestMismatch", err)
			}
			wantNoBlob(t, s, claimed)
			wantNoBlob(t, s, actual)
			// The upload is discarded: the id starts again from nothing, and
			// no stale hash state leaks into the new content.
			wantUploadSize(t, s, id, 0)
			fresh := data(64, uint64(100+i))
			if size := appendChunk(t, s, id, 0, fresh); size != int64(len(fresh)) {
				t.Fatalf("Append after mismatch = %d, want %d", size, len(fresh))
			}
			commit(t, s, id, digest.FromBytes(fresh), int64(len(fresh)), nil)
			wantBlob(t, s, digest.FromBytes(fresh), fresh)
		})
	}
}

func testChunkedAppend(t *testing.T, s *blobstore.Store) {
	chunks := [][]byte{data(1, 1), data(7, 2), data(4096, 3), data(100000, 4), data(3, 5)}
	var all []byte
	const id = "chunked"
	for i, c := range chunks {
		offset, length := int64(len(all)), int64(len(c))
		if i%2 == 1 { // also without Content-Range / Content-Length
			offset, length = -1, -1
		}
		size, err := s.Append(t.Context(), id, offset, length, bytes.NewReader(c))
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		all = append(all, c...)
		if size != int64(len(all)) {
			t.Fatalf("Append #%d = %d, want %d", i, size, len(all))
		}
		wantUploadSize(t, s, id, int64(len(all)))
	}
	last := data(33, 6)
	all = append(all, last...)
	d := digest.FromBytes(all)
	if size := commit(t, s, id, d, int64(len(all)-len(last)), last); size != int64(len(all)) {
		t.Fatalf("Commit = %d, want %d", size, len(all))
	}
	wantBlob(t, s, d, all)
	wantUploadSize(t, s, id, 0)
}

func testWrongOffset(t *testing.T, s *blobstore.Store) {
	tests := []struct {
		name   string
		offset int64
	}{
		{"before the end", 3},
		{"at zero", 0},
		{"after the end", 7},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("offset-%d", i)
			first, second := data(5, 1), data(5, 2)
			appendChunk(t, s, id, 0, first)

			size, err := s.Append(t.Context(), id, tt.offset, int64(len(second)), bytes.NewReader(second))
			if !errors.Is(err, blobstore.ErrOffset) {
				t.Fatalf("Append at %d: error %v, want ErrOffset", tt.offset, err)
			}
			if size != 5 {
				t.Errorf("Append at %d reported size %d, want 5", tt.offset, size)
			}
			all := slices.Concat(first, second)
			_, err = s.Commit(t.Context(), id, digest.FromBytes(all), tt.offset, int64(len(second)), bytes.NewReader(second))
			if !errors.Is(err, blobstore.ErrOffset) {
				t.Fatalf("Commit at %d: error %v, want ErrOffset", tt.offset, err)
			}
			wantUploadSize(t, s, id, 5)

			// The upload is intact and continues at the right offset.
			appendChunk(t, s, id, 5, second)
			commit(t, s, id, digest.FromBytes(all), 10, nil)
			wantBlob(t, s, digest.FromBytes(all), all)
		})
	}
}

func testSizeMismatch(t *testing.T, s *blobstore.Store) {
	ctx := t.Context()
	t.Run("append", func(t *testing.T) {
		const id = "short-append"
		part := data(4, 1)
		size, err := s.Append(ctx, id, 0, 10, bytes.NewReader(part))
		if !errors.Is(err, blobstore.ErrSizeMismatch) {
			t.Fatalf("Append of 4 bytes announced as 10: error %v, want ErrSizeMismatch", err)
		}
		// What arrived stays, and the size reported is the upload's size.
		if size != 4 {
			t.Errorf("Append reported size %d, want 4", size)
		}
		wantUploadSize(t, s, id, 4)
		rest := data(6, 2)
		all := slices.Concat(part, rest)
		appendChunk(t, s, id, 4, rest)
		commit(t, s, id, digest.FromBytes(all), 10, nil)
		wantBlob(t, s, digest.FromBytes(all), all)
	})
	t.Run("commit", func(t *testing.T) {
		content := data(4, 3)
		d := digest.FromBytes(content)
		_, err := s.Commit(ctx, "short-commit", d, 0, 10, bytes.NewReader(content))
		if !errors.Is(err, blobstore.ErrSizeMismatch) {
			t.Fatalf("Commit of 4 bytes announced as 10: error %v, want ErrSizeMismatch", err)
		}
		wantNoBlob(t, s, d)
	})
}

func testEmptyBlob(t *testing.T, s *blobstore.Store) {
	tests := []struct {
		name   string
		alg    digest.Algorithm
		offset int64
	}{
		{"sha256", digest.SHA256, 0},
		{"sha512", digest.SHA512, 0},
		{"unknown offset", digest.SHA256, -1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.alg.FromBytes(nil)
			id := fmt.Sprintf("empty-%d", i)
			size, err := s.Commit(t.Context(), id, d, tt.offset, 0, strings.NewReader(""))
			if err != nil || size != 0 {
				t.Fatalf("Commit of an empty blob = %d, %v; want 0, nil", size, err)
			}
			wantBlob(t, s, d, nil)
		})
	}
}

func testSHA512(t *testing.T, s *blobstore.Store) {
	first, second := data(1000, 1), data(2000, 2)
	all := slices.Concat(first, second)
	d := digest.SHA512.FromBytes(all)

	appendChunk(t, s, "sha512", 0, first)
	commit(t, s, "sha512", d, int64(len(first)), second)
	wantBlob(t, s, d, all)
	wantNoBlob(t, s, digest.SHA256.FromBytes(all))

	appendChunk(t, s, "sha512-wrong", 0, first)
	wrong := digest.SHA512.FromBytes(first)
	_, err := s.Commit(t.Context(), "sha512-wrong", wrong, int64(len(first)), int64(len(second)), bytes.NewReader(second))
	if !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("Commit with the wrong sha512: error %v, want ErrDigestMismatch", err)
	}
	wantNoBlob(t, s, wrong)
}

func testInvalidDigest(t *testing.T, s *blobstore.Store) {
	tests := []struct {
		name   string
		digest digest.Digest
		want   error
	}{
		{"unsupported algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e", digest.ErrDigestUnsupported},
		{"short", "sha256:abc", digest.ErrDigestInvalidLength},
		{"not hex", digest.Digest("sha256:" + strings.Repeat("z", 64)), digest.ErrDigestInvalidFormat},
		{"no algorithm", "abc", digest.ErrDigestInvalidFormat},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("invalid-%d", i)
			_, err := s.Commit(t.Context(), id, tt.digest, 0, 3, strings.NewReader("abc"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Commit with digest %q: error %v, want %v", tt.digest, err, tt.want)
			}
			wantUploadSize(t, s, id, 0)
		})
	}
}

func testCancel(t *testing.T, s *blobstore.Store) {
	ctx := t.Context()
	const id = "cancelled"
	appendChunk(t, s, id, 0, data(100, 1))
	if err := s.Cancel(ctx, id); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	wantUploadSize(t, s, id, 0)
	if err := s.Cancel(ctx, id); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
	if err := s.Cancel(ctx, "never-started"); err != nil {
		t.Fatalf("Cancel of an unknown upload: %v", err)
	}
	// The id starts again from nothing.
	fresh := data(50, 2)
	appendChunk(t, s, id, 0, fresh)
	commit(t, s, id, digest.FromBytes(fresh), 50, nil)
	wantBlob(t, s, digest.FromBytes(fresh), fresh)
}

func testRestart(t *testing.T, s *blobstore.Store) {
	t.Run("continue after restart", func(t *testing.T) {
		first, second := data(3000, 1), data(500, 2)
		all := slices.Concat(first, second)
		appendChunk(t, s, "restart", 0, first)

		restarted := blobstore.New(s.Driver())
		wantUploadSize(t, restarted, "restart", int64(len(first)))
		appendChunk(t, restarted, "restart", int64(len(first)), second)
		commit(t, restarted, "restart", digest.FromBytes(all), int64(len(all)), nil)
		wantBlob(t, restarted, digest.FromBytes(all), all)
		wantBlob(t, s, digest.FromBytes(all), all)
	})
	t.Run("replicas take turns", func(t *testing.T) {
		// Each Store caches hash state; the other's writes must invalidate it.
		other := blobstore.New(s.Driver())
		a, b, c := data(100, 3), data(200, 4), data(300, 5)
		all := slices.Concat(a, b, c)
		appendChunk(t, s, "turns", 0, a)
		appendChunk(t, other, "turns", 100, b)
		appendChunk(t, s, "turns", 300, c)
		commit(t, s, "turns", digest.FromBytes(all), 600, nil)
		wantBlob(t, s, digest.FromBytes(all), all)
	})
	t.Run("commit only after restart", func(t *testing.T) {
		content := data(777, 6)
		appendChunk(t, s, "commit-only", 0, content)
		restarted := blobstore.New(s.Driver())
		// sha512 is not cached at all; sha256 is rebuilt from the bytes.
		for _, d := range []digest.Digest{digest.SHA512.FromBytes(content), digest.FromBytes(content)} {
			id := "commit-only-" + d.Algorithm().String()
			appendChunk(t, s, id, 0, content)
			commit(t, restarted, id, d, int64(len(content)), nil)
			wantBlob(t, s, d, content)
		}
	})
}

func testConcurrentAppends(t *testing.T, s *blobstore.Store) {
	const (
		id     = "concurrent"
		n      = 16
		chunkN = 4096
	)
	chunks := make([][]byte, n)
	for i := range chunks {
		chunks[i] = data(chunkN, uint64(i))
	}
	sizes := make([]int64, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range chunks {
		wg.Go(func() {
			<-start
			sizes[i], errs[i] = s.Append(t.Context(), id, -1, chunkN, bytes.NewReader(chunks[i]))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
	}
	// Serialised appends each end at a distinct multiple of the chunk
	// size; the size an append reports says where its chunk went.
	order := make([][]byte, n)
	for i, size := range sizes {
		slot := int(size/chunkN) - 1
		if size%chunkN != 0 || slot < 0 || slot >= n || order[slot] != nil {
			t.Fatalf("Append sizes %v are not the distinct multiples of %d that serialised appends report", sizes, chunkN)
		}
		order[slot] = chunks[i]
	}
	all := slices.Concat(order...)
	wantUploadSize(t, s, id, int64(len(all)))
	commit(t, s, id, digest.FromBytes(all), int64(len(all)), nil)
	wantBlob(t, s, digest.FromBytes(all), all)
}

func testConcurrentAppendsAtOneOffset(t *testing.T, s *blobstore.Store) {
	const (
		id = "race"
		n  = 8
	)
	chunks := make([][]byte, n)
	for i := range chunks {
		chunks[i] = data(1000, uint64(i))
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range chunks {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Append(t.Context(), id, 0, 1000, bytes.NewReader(chunks[i]))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("Appends #%d and #%d both wrote at offset 0", winner, i)
		case !errors.Is(err, blobstore.ErrOffset):
			t.Fatalf("Append #%d: error %v, want nil or ErrOffset", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no Append at offset 0 succeeded")
	}
	wantUploadSize(t, s, id, 1000)
	d := digest.FromBytes(chunks[winner])
	commit(t, s, id, d, 1000, nil)
	wantBlob(t, s, d, chunks[winner])
}

func testDelete(t *testing.T, s *blobstore.Store) {
	ctx := t.Context()
	content := data(10, 1)
	d := digest.FromBytes(content)
	commit(t, s, "delete", d, 0, content)
	if err := s.Delete(ctx, d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoBlob(t, s, d)
	if _, err := s.Open(ctx, d, 0); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Open after Delete: error %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("second Delete: error %v, want ErrNotFound", err)
	}
}

func testNotFound(t *testing.T, s *blobstore.Store) {
	d := digest.FromString("never stored")
	wantNoBlob(t, s, d)
	if _, err := s.Open(t.Context(), d, 0); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Open: error %v, want ErrNotFound", err)
	}
	wantUploadSize(t, s, "never-started", 0)
}
