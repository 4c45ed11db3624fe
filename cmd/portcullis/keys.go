package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/registry/auth"
)

const keysUsage = `usage: portcullis keys <command> [flags]

commands:
  export --data DIR [--config FILE] --to FILE
        write the server's keys (audit checkpoint key, VSA key, token
        key, self-signed webhook certificate and CA) to one tar file (0600)
  import --data DIR [--config FILE] --from FILE [--force]
        put the keys of such a file into DIR, for a replica that must sign
        with the first replica's keys; a different key already there is
        refused unless --force

Replicas sharing one PostgreSQL database must share these keys
(docs/scale-out.md). Exit 0 done, 2 could not do it.
`

// serverKey is a key or certificate that serve creates in the data
// directory on first start and that every replica must share.
type serverKey struct {
	// name is the file's name in the archive (slash-separated).
	name string
	// private files are written 0600, the others 0644.
	private bool
	// required: export refuses a data directory without it.
	required bool
}

// serverKeys lists every key file serve creates (grep LoadOrCreate,
// keyfile, SelfSigned): what a replica would otherwise make its own of.
var serverKeys = []serverKey{
	{name: audit.KeyFile, private: true, required: true}, // audit checkpoints
	{name: audit.PublicKeyFile},
	{name: "vsa.key", private: true}, // gate.vsaKey: verification summaries
	{name: "vsa.key.pub"},
	{name: auth.TokenKeyFile, private: true}, // registry tokens (with auth)
	{name: auth.TokenKeyFile + ".pub"},
	{name: "webhook/tls.key", private: true}, // self-signed webhook certificate
	{name: "webhook/tls.crt"},
	{name: "webhook/ca.crt"}, // the caBundle of the webhook configuration
}

// keyPath is where key lives for cfg: the VSA key where gate.vsaKey says,
// the rest under the data directory.
func keyPath(cfg *Config, name string) string {
	switch name {
	case "vsa.key":
		return cfg.Gate.VSAKey
	case "vsa.key.pub":
		return cfg.Gate.VSAKey + ".pub"
	}
	return filepath.Join(cfg.Data, filepath.FromSlash(name))
}

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	c := newCommand("keys "+sub, keysUsage, stdout, stderr)
	switch sub {
	case "export", "import":
	case "-h", "--help", "help":
		c.name = "keys"
		c.printUsage(stdout)
		return exitOK
	case "":
		c.name = "keys"
		return c.usageError("want a command: export or import")
	default:
		c.name = "keys"
		return c.usageError("unknown command %q", sub)
	}
	fs := c.fs
	data := fs.String("data", "", "the server's data directory")
	configPath := fs.String("config", "", "portcullis.yaml (for data and gate.vsaKey)")
	var file *string
	force := new(bool)
	if sub == "export" {
		file = fs.String("to", "", "the tar file to write (created 0600; an existing file is refused)")
	} else {
		file = fs.String("from", "", "the tar file `portcullis keys export` wrote")
		force = fs.Bool("force", false, "replace keys of DIR that differ from the file's (the data directory's own keys are lost)")
	}
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code
	}
	if *data == "" && *configPath == "" {
		return c.usageError("--data DIR (or --config FILE) is required")
	}
	if *file == "" {
		return c.usageError("--%s FILE is required", map[string]string{"export": "to", "import": "from"}[sub])
	}
	cfg, err := offlineConfig(*configPath, *data)
	if err != nil {
		return c.fail(err)
	}
	if sub == "export" {
		names, err := exportKeys(cfg, *file)
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(stdout, "exported %d files to %s: %s\n", len(names), *file, strings.Join(names, " "))
		return exitOK
	}
	res, err := importKeys(cfg, *file, *force)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(stdout, "imported %d files into %s (%d already there and equal)\n", res.written, cfg.Data, res.same)
	return exitOK
}

// exportKeys writes every key file of cfg that exists to a new tar file
// and returns their names.
func exportKeys(cfg *Config, to string) ([]string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	for _, k := range serverKeys {
		b, err := os.ReadFile(keyPath(cfg, k.name))
		if errors.Is(err, fs.ErrNotExist) {
			if k.required {
				return nil, fmt.Errorf("no %s in %s: start portcullis serve once with this data directory (it creates the keys), then export", k.name, cfg.Data)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: k.name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
		names = append(names, k.name)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
		os.Remove(to)
		return nil, fmt.Errorf("export %s: %w", to, err)
	}
	return names, nil
}

// maxKeyFile bounds one file of a key archive: keys and certificates are
// a few kilobytes.
const maxKeyFile = 1 << 20

type importResult struct{ written, same int }

// importKeys puts the keys of the archive from into cfg's places. Every
// file is checked before any is written: an unknown name, a missing audit
// key, or (without force) a different key already in place refuses the
// whole import.
func importKeys(cfg *Config, from string, force bool) (importResult, error) {
	var res importResult
	f, err := os.Open(from)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	known := map[string]serverKey{}
	for _, k := range serverKeys {
		known[k.name] = k
	}
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("import %s: not a key archive of portcullis keys export: %w", from, err)
		}
		if _, ok := known[h.Name]; !ok || h.Typeflag != tar.TypeReg {
			return res, fmt.Errorf("import %s: unexpected entry %q (not a key archive of portcullis keys export?)", from, h.Name)
		}
		if _, dup := files[h.Name]; dup {
			return res, fmt.Errorf("import %s: %q given twice (not a key archive of portcullis keys export?)", from, h.Name)
		}
		if h.Size > maxKeyFile {
			return res, fmt.Errorf("import %s: %q is %d bytes, over the %d of a key file", from, h.Name, h.Size, maxKeyFile)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxKeyFile))
		if err != nil {
			return res, fmt.Errorf("import %s: %w", from, err)
		}
		files[h.Name] = b
	}
	if _, ok := files[audit.KeyFile]; !ok {
		return res, fmt.Errorf("import %s: no %s in it", from, audit.KeyFile)
	}
	var write []serverKey
	for _, k := range serverKeys {
		b, ok := files[k.name]
		if !ok {
			continue
		}
		old, err := os.ReadFile(keyPath(cfg, k.name))
		switch {
		case err == nil && bytes.Equal(old, b):
			res.same++
			continue
		case err == nil && !force:
			return res, fmt.Errorf("import: %s exists and differs from the archive's (this data directory has keys of its own; --force replaces them)", keyPath(cfg, k.name))
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return res, fmt.Errorf("import: %w", err)
		}
		write = append(write, k)
	}
	for _, k := range write {
		mode := fs.FileMode(0o644)
		if k.private {
			mode = 0o600
		}
		if err := writeKeyFile(keyPath(cfg, k.name), files[k.name], mode); err != nil {
			return res, fmt.Errorf("import: %w", err)
		}
		res.written++
	}
	return res, nil
}

// writeKeyFile replaces path with b atomically (a temporary file renamed
// into place), with mode.
func writeKeyFile(path string, b []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".import-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err := errors.Join(err, tmp.Chmod(mode), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
