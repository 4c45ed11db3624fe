package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry/store"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/scanner/trivy"
)

// scanOnPush queues a background scan for each manifest pushed under one
// of the configured prefixes.
type scanOnPush struct {
	prefixes []string
	log      *slog.Logger
	q        *scanner.Queue
	s        *trivy.Scanner
}

// startScanning builds the scanner and its queue over the storage core
// (the queue reads images in-process); its pushed method is the API's
// manifest-pushed hook.
func startScanning(cfg scanner.Config, core *store.Store, log *slog.Logger, metrics prometheus.Registerer) (*scanOnPush, error) {
	s, err := trivy.New(trivy.Options{DBDir: cfg.DB, MaxAge: time.Duration(cfg.MaxAge), Logger: log})
	if err != nil {
		return nil, err
	}
	q, err := scanner.NewQueue(s, storeContent{core}, scanner.QueueOptions{
		Workers: cfg.Workers, Size: cfg.QueueSize, Logger: log, Registerer: metrics,
	})
	if err != nil {
		return nil, err
	}
	h := &scanOnPush{prefixes: *cfg.ScanOnPush, log: log, q: q, s: s}
	if info, err := s.DBInfo(context.Background()); err != nil {
		log.Warn("vulnerability scans will fail until a database is imported", "db", cfg.DB, "err", err)
	} else {
		log.Info("vulnerability database", "db", cfg.DB, "builtAt", info.BuiltAt, "source", info.Source, "digest", info.Digest)
	}
	return h, nil
}

// pushed is the registry's manifest-pushed hook.
func (h *scanOnPush) pushed(ctx context.Context, repo string, d digest.Digest) {
	if h.q == nil {
		return
	}
	for _, p := range h.prefixes {
		if contract.InNamespace(repo, p) {
			h.q.Enqueue(ctx, repo, d)
			return
		}
	}
}

// stop drains the queue until ctx ends, then releases Trivy's state.
func (h *scanOnPush) stop(ctx context.Context) {
	if h.q == nil {
		return
	}
	if err := h.q.Close(ctx); err != nil {
		h.log.Warn("scan queue", "err", err)
	}
	if err := trivy.Close(); err != nil {
		h.log.Warn("closing the vulnerability database", "err", err)
	}
	if err := trivy.Cleanup(); err != nil {
		h.log.Warn("removing Trivy's temporary directory", "err", err)
	}
}

// storeContent reads images in-process from the storage core.
type storeContent struct{ s *store.Store }

func (c storeContent) Manifest(ctx context.Context, repo string, d digest.Digest) (string, []byte, error) {
	m, err := c.s.Source().Manifest(ctx, repo, d)
	if err != nil {
		return "", nil, err
	}
	return m.MediaType, m.Content, nil
}

func (c storeContent) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, error) {
	return c.s.OpenBlob(ctx, repo, d)
}

const scanUsage = `usage: portcullis scan [flags] IMAGE

Scans IMAGE (a tag or a digest in a registry) for known vulnerabilities
with the offline database (see 'portcullis db import') and prints the
findings. Exit status: 0 when the scan was done (whatever it found), 2 when
it could not be done.

flags:
`

func scanCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("scan", scanUsage, stdout, stderr)
	fs := c.fs
	dbf := addDBFlags(fs)
	maxAge := fs.Duration("max-age", 0, "fail when the database is older (default scanner.maxAge, 168h)")
	output := fs.String("output", "table", "table or json (the Report)")
	sbom := fs.String("sbom", "", "also write a CycloneDX SBOM of the packages found to this file")
	insecure := fs.Bool("allow-insecure-registry", false, "reach the registry over plain HTTP (loopback registries always are)")
	pos, code, ok := c.parse(args, 1, 1)
	if !ok {
		return code
	}
	image := pos[0]
	fail := func(err error) int { return c.fail(errors.New(oneLine(err))) }
	if *output != "table" && *output != "json" {
		return fail(fmt.Errorf("--output %q: want table or json", *output))
	}
	cfg, err := dbf.config(false)
	if err != nil {
		return fail(err)
	}
	if *maxAge != 0 {
		cfg.Scanner.MaxAge = Duration(*maxAge)
	}
	log := cliLogger(stderr)
	s, err := trivy.New(trivy.Options{DBDir: cfg.Scanner.DB, MaxAge: time.Duration(cfg.Scanner.MaxAge), Logger: log})
	if err != nil {
		return fail(err)
	}
	defer func() { _ = trivy.Close(); _ = trivy.Cleanup() }()

	var nameOpts []name.Option
	if *insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(image, nameOpts...)
	if err != nil {
		return fail(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", image, err))
	}
	h, err := img.Digest() // go-containerregistry's hash, at the remote.Image boundary
	if err != nil {
		return fail(fmt.Errorf("%s: %w", image, err))
	}
	d := digest.Digest(h.String())
	r, err := s.Scan(ctx, d, img)
	if err != nil {
		return fail(err)
	}
	if *sbom != "" {
		b, err := scanner.CycloneDX(r, version)
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(*sbom, b, 0o644); err != nil {
			return fail(err)
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fail(err)
		}
		return 0
	}
	if err := printReport(stdout, ref.Context().Name()+"@"+d.String(), r); err != nil {
		return fail(err)
	}
	return 0
}

// printReport writes the findings as a table.
func printReport(w io.Writer, image string, r *scanner.Report) error {
	osName := "none detected"
	if r.OS != nil {
		osName = r.OS.Family + " " + r.OS.Name
	}
	fmt.Fprintf(w, "%s\nOS: %s, %d packages; DB built %s (%s)\n", image, osName, r.Packages, r.DB.BuiltAt.UTC().Format(time.RFC3339), r.DB.Source)
	fmt.Fprintf(w, "CRITICAL %d, HIGH %d, MEDIUM %d, LOW %d, UNKNOWN %d\n\n",
		r.Counts[scanner.SeverityCritical], r.Counts[scanner.SeverityHigh], r.Counts[scanner.SeverityMedium], r.Counts[scanner.SeverityLow], r.Counts[scanner.SeverityUnknown])
	if len(r.Vulnerabilities) == 0 {
		_, err := fmt.Fprintln(w, "no known vulnerabilities")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPACKAGE\tINSTALLED\tFIXED\tSEVERITY\tCVSS")
	for _, v := range r.Vulnerabilities {
		cvss := "-"
		if v.CVSS > 0 {
			cvss = fmt.Sprintf("%.1f", v.CVSS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Package, v.InstalledVersion, orDash(v.FixedVersion), v.Severity, cvss)
	}
	return tw.Flush()
}

// cliLogger logs warnings and errors to stderr: Trivy's progress (info)
// stays out of a command's output.
func cliLogger(stderr io.Writer) *slog.Logger {
	l := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(l)
	return l
}

// oneLine flattens an error message for a one-line report.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
