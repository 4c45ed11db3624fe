package trivy

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	tdb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/scanner"
)

// Media types of Trivy's vulnerability database as an OCI artifact, as
// Aqua publishes it (ghcr.io/aquasecurity/trivy-db:2): a manifest with this
// config and one layer, a gzipped tar of trivy.db and metadata.json.
const (
	MediaTypeDBConfig = "application/vnd.aquasec.trivy.config.v1+json"
	MediaTypeDBLayer  = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
)

const (
	dbFile       = "trivy.db"
	metadataFile = "metadata.json"
	// importFile records where an imported database came from and the
	// digest of its trivy.db, so a scan need not hash the file.
	importFile = "portcullis-import.json"
	// maxDBSize bounds trivy.db in an archive (Trivy's is ~1 GB today).
	maxDBSize = 8 << 30
	// maxMetadataSize bounds metadata.json.
	maxMetadataSize = 1 << 20
)

// importRecord is importFile.
type importRecord struct {
	Source     string    `json:"source"`
	Digest     string    `json:"digest"`
	ImportedAt time.Time `json:"importedAt"`
}

// Status is what `portcullis db status` shows.
type Status struct {
	scanner.DBInfo
	// Dir is the database directory.
	Dir string `json:"dir"`
	// Age is how long ago the database was built.
	Age time.Duration `json:"age"`
	// ImportedAt is when `portcullis db import` stored it (zero if it was
	// not imported).
	ImportedAt time.Time `json:"importedAt,omitzero"`
	// NextUpdate is when the publisher planned the next build.
	NextUpdate time.Time `json:"nextUpdate,omitzero"`
}

// ReadStatus describes the database in dir without opening it for
// scanning. It fails like a scan would on a missing or corrupt database,
// but not on an old one: Age says how old it is.
func ReadStatus(dir string) (Status, error) {
	st, _, err := inspectDB(dir)
	return st, err
}

// inspectDB reads dir's metadata and import record, and stats trivy.db.
// The digest comes from the import record, or else from hashing trivy.db.
func inspectDB(dir string) (Status, os.FileInfo, error) {
	st := Status{Dir: dir}
	fi, err := os.Stat(filepath.Join(dir, dbFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil, fmt.Errorf("%s: %w (run `portcullis db import`)", filepath.Join(dir, dbFile), scanner.ErrNoDB)
	}
	if err != nil {
		return st, nil, fmt.Errorf("vulnerability database: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return st, nil, fmt.Errorf("%s is not a database file: %w", filepath.Join(dir, dbFile), scanner.ErrDBCorrupt)
	}
	meta, err := readMetadata(filepath.Join(dir, metadataFile))
	if err != nil {
		return st, nil, err
	}
	st.Version = meta.Version
	st.BuiltAt = meta.UpdatedAt
	st.NextUpdate = meta.NextUpdate
	st.Age = time.Since(meta.UpdatedAt).Round(time.Second)
	st.Source = dir
	if b, err := os.ReadFile(filepath.Join(dir, importFile)); err == nil {
		var rec importRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return st, nil, fmt.Errorf("%s: %v: %w", filepath.Join(dir, importFile), err, scanner.ErrDBCorrupt)
		}
		st.Source, st.Digest, st.ImportedAt = rec.Source, rec.Digest, rec.ImportedAt
	}
	return st, fi, nil
}

func readMetadata(path string) (metadata.Metadata, error) {
	var meta metadata.Metadata
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return meta, fmt.Errorf("%s is missing: %w", path, scanner.ErrDBCorrupt)
	}
	if err != nil {
		return meta, fmt.Errorf("vulnerability database metadata: %w", err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, fmt.Errorf("%s: %v: %w", path, err, scanner.ErrDBCorrupt)
	}
	if meta.Version != tdb.SchemaVersion {
		return meta, fmt.Errorf("%s: schema version %d, want %d: %w", path, meta.Version, tdb.SchemaVersion, scanner.ErrDBCorrupt)
	}
	if meta.UpdatedAt.IsZero() {
		return meta, fmt.Errorf("%s: no UpdatedAt: %w", path, scanner.ErrDBCorrupt)
	}
	return meta, nil
}

// checkBolt opens path read-only with bbolt alone (not trivy-db's global
// handle) and walks the top-level buckets: a file that is not a bolt
// database, or a truncated one, fails here rather than in a scan.
func checkBolt(path string) error {
	b, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("%s: %v: %w", path, err, scanner.ErrDBCorrupt)
	}
	defer b.Close()
	n := 0
	err = b.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
	})
	if err != nil {
		return fmt.Errorf("%s: %v: %w", path, err, scanner.ErrDBCorrupt)
	}
	if n == 0 {
		return fmt.Errorf("%s holds no buckets: %w", path, scanner.ErrDBCorrupt)
	}
	return nil
}

// fileDigest hashes a file.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ImportArchive stores the database in r, a gzipped tar holding trivy.db
// and metadata.json (Trivy's db.tar.gz, the layer of its OCI artifact), in
// dst, replacing what dst held only once the new one has been checked.
// source is recorded for `db status`.
func ImportArchive(ctx context.Context, dst string, r io.Reader, source string) (Status, error) {
	tmp, err := stage(dst)
	if err != nil {
		return Status{}, err
	}
	defer os.RemoveAll(tmp)
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Status{}, fmt.Errorf("db import %s: not a gzip archive: %v: %w", source, err, scanner.ErrDBCorrupt)
	}
	tr := tar.NewReader(zr)
	var digest string
	found := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return Status{}, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Status{}, fmt.Errorf("db import %s: %v: %w", source, err, scanner.ErrDBCorrupt)
		}
		name := filepath.Base(filepath.Clean(h.Name))
		if h.Typeflag != tar.TypeReg || (name != dbFile && name != metadataFile) || strings.Count(strings.Trim(h.Name, "./"), "/") > 0 {
			continue // only the two files, at the top
		}
		limit := int64(maxDBSize)
		if name == metadataFile {
			limit = maxMetadataSize
		}
		if h.Size > limit {
			return Status{}, fmt.Errorf("db import %s: %s is %d bytes, over %d: %w", source, name, h.Size, limit, scanner.ErrDBCorrupt)
		}
		d, err := writeFile(filepath.Join(tmp, name), io.LimitReader(tr, limit))
		if err != nil {
			if archiveBroken(err) {
				err = fmt.Errorf("%w: %w", scanner.ErrDBCorrupt, err)
			}
			return Status{}, fmt.Errorf("db import %s: %w", source, err)
		}
		if name == dbFile {
			digest = d
		}
		found[name] = true
	}
	// Drain the gzip stream so its checksum is verified.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return Status{}, fmt.Errorf("db import %s: %v: %w", source, err, scanner.ErrDBCorrupt)
	}
	for _, n := range []string{dbFile, metadataFile} {
		if !found[n] {
			return Status{}, fmt.Errorf("db import %s: the archive has no %s: %w", source, n, scanner.ErrDBCorrupt)
		}
	}
	return commit(tmp, dst, source, digest)
}

// archiveBroken reports whether err says an archive's bytes are bad, as
// opposed to failing to write them.
func archiveBroken(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, tar.ErrHeader)
}

// ImportDir copies a database directory (trivy.db and metadata.json, as in
// Trivy's cache directory ~/.cache/trivy/db) into dst.
func ImportDir(ctx context.Context, dst, src string) (Status, error) {
	tmp, err := stage(dst)
	if err != nil {
		return Status{}, err
	}
	defer os.RemoveAll(tmp)
	var digest string
	for _, n := range []string{dbFile, metadataFile} {
		if err := ctx.Err(); err != nil {
			return Status{}, err
		}
		f, err := os.Open(filepath.Join(src, n))
		if errors.Is(err, os.ErrNotExist) {
			return Status{}, fmt.Errorf("db import %s: no %s: %w", src, n, scanner.ErrNoDB)
		}
		if err != nil {
			return Status{}, fmt.Errorf("db import: %w", err)
		}
		d, err := writeFile(filepath.Join(tmp, n), f)
		f.Close()
		if err != nil {
			return Status{}, fmt.Errorf("db import %s: %w", src, err)
		}
		if n == dbFile {
			digest = d
		}
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		abs = src
	}
	return commit(tmp, dst, abs, digest)
}

// stage makes an empty directory next to dst, on the same file system so
// that commit can rename it into place.
func stage(dst string) (string, error) {
	parent := filepath.Dir(filepath.Clean(dst))
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return "", fmt.Errorf("db import: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".import-")
	if err != nil {
		return "", fmt.Errorf("db import: %w", err)
	}
	return tmp, nil
}

// writeFile writes r to path, synced, and returns its digest.
func writeFile(path string, r io.Reader) (string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// commit checks the staged database, records its import and swaps it in
// for dst: the old directory is renamed away, the new one renamed into
// place, the old one removed. A server holding the old trivy.db open keeps
// reading it until it notices the new file.
func commit(tmp, dst, source, digest string) (Status, error) {
	if _, err := readMetadata(filepath.Join(tmp, metadataFile)); err != nil {
		return Status{}, fmt.Errorf("db import %s: %w", source, err)
	}
	if err := checkBolt(filepath.Join(tmp, dbFile)); err != nil {
		return Status{}, fmt.Errorf("db import %s: %w", source, err)
	}
	rec, err := json.Marshal(importRecord{Source: source, Digest: digest, ImportedAt: time.Now().UTC()})
	if err != nil {
		return Status{}, err
	}
	if _, err := writeFile(filepath.Join(tmp, importFile), strings.NewReader(string(rec))); err != nil {
		return Status{}, fmt.Errorf("db import: %w", err)
	}
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dst, old); err != nil {
			return Status{}, fmt.Errorf("db import: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return Status{}, fmt.Errorf("db import: %w", err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return ReadStatus(dst)
}

// BuildDB writes a database in dir with trivy-db's own API: fill runs in
// one write transaction, then metadata.json is written with meta (Version
// defaults to the schema version). It holds the global handle's lock, so
// it can run in a process that also scans; it is meant for fixtures and
// tests, not for real databases.
func BuildDB(dir string, meta metadata.Metadata, fill func(dbc tdb.Config, tx *bolt.Tx) error) error {
	opened.mu.Lock()
	defer opened.mu.Unlock()
	if err := tdb.Close(); err != nil {
		return fmt.Errorf("build db: %w", err)
	}
	opened.path, opened.fi = "", nil
	if err := tdb.Init(dir); err != nil {
		return fmt.Errorf("build db: %w", err)
	}
	dbc := tdb.Config{}
	err := dbc.BatchUpdate(func(tx *bolt.Tx) error { return fill(dbc, tx) })
	if cerr := tdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("build db: %w", err)
	}
	if meta.Version == 0 {
		meta.Version = tdb.SchemaVersion
	}
	if err := metadata.NewClient(dir).Update(meta); err != nil {
		return fmt.Errorf("build db: %w", err)
	}
	return nil
}
