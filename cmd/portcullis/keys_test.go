package main

// Replica keys: two `portcullis serve` processes share one PostgreSQL
// database (metadata and decision history) and one blob directory; the
// second one's data directory gets the first one's keys with `portcullis
// keys import`, as docs/scale-out.md says. Both record decisions and sign
// checkpoints, and `portcullis audit verify` with the first one's public
// key passes. Without the import the second replica signs with a key of
// its own and verify fails: the set-up the docs used to give.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/internal/pgtest"
)

func runKeys(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"keys"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// replicaPair runs two replicas one after the other, overlapping, each
// recording denied promotions; importKeys gives the second the first's
// keys. It returns the exit status and output of audit verify.
func replicaPair(t *testing.T, importKeys bool) (int, string) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, fmt.Appendf(nil, `metadata:
  driver: postgres
  postgres: {dsn: %q}
storage:
  filesystem: {rootDirectory: %q}
scanner:
  scanOnPush: []
audit:
  checkpointInterval: 1h
`, pgtest.DSN(t), filepath.Join(dir, "blobs")))
	data0, data1 := filepath.Join(dir, "replica0"), filepath.Join(dir, "replica1")
	r0 := startServer(t, data0, "--config", cfg)
	if importKeys {
		archive := filepath.Join(dir, "keys.tar")
		if code, out, errOut := runKeys("export", "--config", cfg, "--data", data0, "--to", archive); code != exitOK {
			t.Fatalf("keys export: exit %d\n%s%s", code, out, errOut)
		}
		if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key archive: %v, mode %v, want 0600", err, fi.Mode())
		}
		if code, out, errOut := runKeys("import", "--config", cfg, "--data", data1, "--from", archive); code != exitOK {
			t.Fatalf("keys import: exit %d\n%s%s", code, out, errOut)
		}
	}
	r1 := startServer(t, data1, "--config", cfg)
	img := newTestImage(t, map[string][]byte{"app/bin": randomBytes(1024)})
	img.push(t, r0, "staging/app", "1")
	c := newClient(t)
	deny := func(s *server) {
		t.Helper()
		// No trust is configured: the default policy denies, and records.
		if status, pr := promoteAPI(t, c, s, "staging/app:1", "prod/app:1"); status != http.StatusForbidden {
			t.Fatalf("promotion through %s: %d %s, want 403", s.Addr, status, promotionReasons(pr))
		}
	}
	deny(r0)
	deny(r1)
	// r0's shutdown signs a checkpoint of what it has seen; r1 records
	// more and signs the last one at its own shutdown.
	r0.Stop()
	deny(r1)
	r1.Stop()

	// An auditor verifies through the API (a read-only log on PostgreSQL
	// wants a read-only role), with the key the first replica published.
	r2 := startServer(t, data1, "--config", cfg)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"audit", "verify", "--server", r2.URL(""), "--pubkey", filepath.Join(data0, audit.PublicKeyFile)}, &out, &errb)
	return code, out.String() + errb.String()
}

func TestReplicaKeys(t *testing.T) {
	t.Parallel()
	t.Run("imported", func(t *testing.T) {
		t.Parallel()
		code, out := replicaPair(t, true)
		if code != exitOK || !strings.Contains(out, "audit log verified: ") {
			t.Fatalf("audit verify of two replicas sharing keys: exit %d, want 0\n%s", code, out)
		}
	})
	t.Run("not imported", func(t *testing.T) {
		t.Parallel()
		code, out := replicaPair(t, false)
		if code != exitDenied || !strings.Contains(out, "signature") {
			t.Fatalf("audit verify when the second replica signed with its own key: exit %d, want 1 and a signature that does not verify\n%s", code, out)
		}
		t.Logf("audit verify without the import: %s", out)
	})
}

// TestKeysImportRefusesOthers: a data directory that has keys of its own
// keeps them unless --force, file modes are 0600 for private keys, and a
// file that is not a key archive is refused, each with one line and exit 2.
func TestKeysImportRefusesOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if _, err := audit.LoadOrCreateSigner(d); err != nil {
			t.Fatal(err)
		}
	}
	archive := filepath.Join(dir, "a.tar")
	if code, out, errOut := runKeys("export", "--data", a, "--to", archive); code != exitOK || !strings.Contains(out, "audit-key") {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runKeys("export", "--data", a, "--to", archive); code != exitFailed || strings.Count(errOut, "\n") != 1 {
		t.Errorf("export over an existing file: exit %d, want 2 and one line\n%s", code, errOut)
	}
	if code, _, errOut := runKeys("export", "--data", filepath.Join(dir, "empty"), "--to", filepath.Join(dir, "x.tar")); code != exitFailed || !strings.Contains(errOut, "start portcullis serve once") {
		t.Errorf("export of a directory without keys: exit %d\n%s", code, errOut)
	}
	before := readFile(t, filepath.Join(b, audit.KeyFile))
	code, _, errOut := runKeys("import", "--data", b, "--from", archive)
	if code != exitFailed || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("import over a different key: exit %d, want 2 and one line naming --force\n%s", code, errOut)
	}
	equalBytes(t, "audit key after a refused import", readFile(t, filepath.Join(b, audit.KeyFile)), before)
	if code, out, errOut := runKeys("import", "--data", b, "--from", archive, "--force"); code != exitOK {
		t.Fatalf("import --force: exit %d\n%s%s", code, out, errOut)
	}
	equalBytes(t, "audit key after import --force", readFile(t, filepath.Join(b, audit.KeyFile)), readFile(t, filepath.Join(a, audit.KeyFile)))
	if fi, err := os.Stat(filepath.Join(b, audit.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("imported audit key: %v, mode %v, want 0600", err, fi.Mode())
	}
	// Importing the same keys again changes nothing and is fine.
	if code, out, _ := runKeys("import", "--data", b, "--from", archive); code != exitOK || !strings.Contains(out, "imported 0 files") {
		t.Errorf("second import: exit %d: %s", code, out)
	}
	notKeys := filepath.Join(dir, "not.tar")
	writeFile(t, notKeys, tarOf(t, map[string][]byte{"../etc/passwd": []byte("x")}))
	if code, _, errOut := runKeys("import", "--data", b, "--from", notKeys); code != exitFailed || !strings.Contains(errOut, "unexpected entry") {
		t.Errorf("import of a tar that is no key archive: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runKeys("import", "--data", b); code != exitFailed || !strings.Contains(errOut, "--from FILE is required") {
		t.Errorf("import without --from: exit %d\n%s", code, errOut)
	}
}

// An archive made to attack the importer is refused whole: links, names
// that leave the data directory, entries over the size of a key (which
// were truncated), and a key given twice (the second won). Nothing is
// written.
func TestKeysImportRefusesAttackTar(t *testing.T) {
	t.Parallel()
	key := []byte("-----BEGIN PRIVATE KEY-----\n")
	reg := func(name string, b []byte) tarEntryOf {
		return tarEntryOf{tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg}, b}
	}
	tests := []struct {
		name    string
		entries []tarEntryOf
		want    string
	}{
		{"symlink named as a key", []tarEntryOf{{tar.Header{Name: audit.KeyFile, Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink}, nil}}, "unexpected entry"},
		{"hard link named as a key", []tarEntryOf{reg(audit.KeyFile, key), {tar.Header{Name: "webhook/tls.key", Linkname: audit.KeyFile, Typeflag: tar.TypeLink}, nil}}, "unexpected entry"},
		{"traversal", []tarEntryOf{reg(audit.KeyFile, key), reg("webhook/../../audit-key", key)}, "unexpected entry"},
		{"absolute", []tarEntryOf{reg(audit.KeyFile, key), reg("/tmp/audit-key", key)}, "unexpected entry"},
		{"directory", []tarEntryOf{reg(audit.KeyFile, key), {tar.Header{Name: "webhook/", Typeflag: tar.TypeDir, Mode: 0o777}, nil}}, "unexpected entry"},
		{"oversized", []tarEntryOf{reg(audit.KeyFile, bytes.Repeat([]byte("k"), 1<<20+1))}, "bytes"},
		{"twice", []tarEntryOf{reg(audit.KeyFile, key), reg(audit.KeyFile, []byte("other"))}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			archive := filepath.Join(dir, "attack.tar")
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, e := range tt.entries {
				if err := tw.WriteHeader(&e.hdr); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(e.body); err != nil {
					t.Fatal(err)
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			writeFile(t, archive, buf.Bytes())
			data := filepath.Join(dir, "data")
			code, _, errOut := runKeys("import", "--data", data, "--from", archive, "--force")
			if code != exitFailed || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("import of %s: exit %d, want 2 and one line with %q\n%s", tt.name, code, tt.want, errOut)
			}
			if _, err := os.Lstat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused import created the data directory: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d files beside the archive after a refused import", len(entries)-1)
			}
		})
	}
}

type tarEntryOf struct {
	hdr  tar.Header
	body []byte
}
