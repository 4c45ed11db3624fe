// Package trivy implements [scanner.Scanner] with Trivy as a library,
// offline: the vulnerability database is a local directory (filled by
// `portcullis db import` from a file or an OCI artifact), never
// downloaded at scan time.
//
// This is the only package that imports Trivy: it triples build time and
// binary size, so nothing else links it.
//
// Process-wide state, all forced by Trivy and all kept here:
//   - trivy-db holds one global database handle. [Scanner] swaps it
//     (Close then Init) under a package mutex when the database directory
//     or its file changes; scans hold the mutex for reading.
//   - importing Trivy installs a slog default handler that buffers every
//     record forever; [New] replaces it (see [InstallLogger]).
//   - Trivy writes layers under $TMPDIR/trivy-<pid>; [Cleanup] removes it.
//   - Trivy's analyzers are process-wide singletons; those whose Init
//     writes fields (dpkg copyright, Python egg, license file, secret) are
//     disabled so that concurrent scans do not race.
package trivy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	tdb "github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	"github.com/aquasecurity/trivy/pkg/fanal/artifact"
	aimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	tlog "github.com/aquasecurity/trivy/pkg/log"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	scanutils "github.com/aquasecurity/trivy/pkg/scan/utils"
	ttypes "github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
	xos "github.com/aquasecurity/trivy/pkg/x/os"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/scanner"

	// The analyzers Portcullis scans with: OS packages and language
	// packages found in images. Java jars are left out: Trivy's jar
	// analyzer needs its separate Java DB, which would be downloaded.
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/language/golang/binary"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/language/nodejs/pkg"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/language/python/packaging"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/language/ruby/gemspec"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/language/rust/binary"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/os/alpine"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/os/amazonlinux"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/os/debian"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/os/redhatbase"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/os/release"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/os/ubuntu"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/pkg/apk"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/pkg/dpkg"
	_ "github.com/aquasecurity/trivy/pkg/fanal/analyzer/pkg/rpm"
)

// DefaultMaxAge is how old a database may be by default
// (scanner.DefaultDBMaxAge, the scanner section's default).
const DefaultMaxAge = scanner.DefaultDBMaxAge

// Options configures a [Scanner].
type Options struct {
	// DBDir holds trivy.db and metadata.json. Required.
	DBDir string
	// MaxAge is how old (by its build time) the database may be; older
	// fails every scan with [scanner.ErrDBTooOld]. Default DefaultMaxAge;
	// negative: no limit.
	MaxAge time.Duration
	// Logger receives the scanner's logs, and Trivy's (see InstallLogger).
	// Default slog.Default().
	Logger *slog.Logger
	// Parallel is how many layers one scan analyzes at once. Default 2.
	Parallel int
}

// Scanner scans images with Trivy and the database in Options.DBDir.
// It is safe for concurrent use.
type Scanner struct {
	dir      string
	maxAge   time.Duration
	log      *slog.Logger
	parallel int
	version  string

	mu      sync.Mutex
	checked struct { // memo of the last checked trivy.db
		fi     os.FileInfo
		digest string
		err    error
	}
}

// opened is trivy-db's global handle: which file it holds. Scans hold mu
// for reading; a swap holds it for writing.
var opened struct {
	mu   sync.RWMutex
	path string
	fi   os.FileInfo
}

// New returns a scanner. It checks nothing about the database: a missing
// one is reported by each scan (and by DBInfo), so that a server starts
// before its first import.
func New(opts Options) (*Scanner, error) {
	if opts.DBDir == "" {
		return nil, errors.New("trivy: no database directory")
	}
	dir, err := filepath.Abs(opts.DBDir)
	if err != nil {
		return nil, fmt.Errorf("trivy: %w", err)
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	InstallLogger(opts.Logger)
	return &Scanner{dir: dir, maxAge: opts.MaxAge, log: opts.Logger, parallel: opts.Parallel, version: trivyVersion()}, nil
}

// InstallLogger makes l the process-wide slog default if Trivy's buffering
// handler is still in place, flushing what it buffered into l. A program
// that installs its own default before scanning needs nothing else.
func InstallLogger(l *slog.Logger) {
	if d, ok := slog.Default().Handler().(*tlog.DeferredHandler); ok {
		d.Flush(l.Handler())
		slog.SetDefault(l)
	}
}

// Cleanup removes Trivy's temporary directory, $TMPDIR/trivy-<pid>. Call
// it when no scan runs (at exit); a later scan makes the directory again.
func Cleanup() error {
	return xos.Cleanup()
}

// Close releases trivy-db's global handle if it is open.
func Close() error {
	opened.mu.Lock()
	defer opened.mu.Unlock()
	opened.path, opened.fi = "", nil
	return tdb.Close()
}

// DBInfo describes the database a scan would use now, checking it as a
// scan would (missing, corrupt, too old).
func (s *Scanner) DBInfo(_ context.Context) (scanner.DBInfo, error) {
	info, _, err := s.check()
	return info, err
}

// check reads the database's metadata and applies the age limit.
func (s *Scanner) check() (scanner.DBInfo, os.FileInfo, error) {
	st, fi, err := inspectDB(s.dir)
	if err != nil {
		return scanner.DBInfo{}, nil, err
	}
	if s.maxAge > 0 && st.Age > s.maxAge {
		return scanner.DBInfo{}, nil, fmt.Errorf("%s was built %s ago (%s), over the %s limit: %w (import a newer one)",
			s.dir, st.Age, st.BuiltAt.UTC().Format(time.RFC3339), s.maxAge, scanner.ErrDBTooOld)
	}
	d, err := s.validate(fi, st.Digest)
	if err != nil {
		return scanner.DBInfo{}, nil, err
	}
	st.Digest = d
	return st.DBInfo, fi, nil
}

// validate checks trivy.db as a bolt database and returns its digest
// (known, or hashed), doing the work only when the file changed.
func (s *Scanner) validate(fi os.FileInfo, known string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checked.fi != nil && sameFile(s.checked.fi, fi) {
		return cmp.Or(known, s.checked.digest), s.checked.err
	}
	path := filepath.Join(s.dir, dbFile)
	d, err := known, checkBolt(path)
	if err == nil && d == "" {
		if d, err = fileDigest(path); err != nil {
			err = fmt.Errorf("vulnerability database: %w", err)
		}
	}
	s.checked.fi, s.checked.digest, s.checked.err = fi, d, err
	return d, err
}

func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// acquire checks the database, makes trivy-db's global handle hold it,
// and returns with opened.mu held: for reading when the handle already
// held it, else for writing after the swap (so a scan that swapped always
// runs, however often scanners with other databases swap back). Call
// release when the scan is done.
func (s *Scanner) acquire() (info scanner.DBInfo, release func(), err error) {
	path := filepath.Join(s.dir, dbFile)
	info, fi, err := s.check()
	if err != nil {
		return info, nil, err
	}
	opened.mu.RLock()
	if opened.path == path && sameFile(opened.fi, fi) {
		return info, opened.mu.RUnlock, nil
	}
	opened.mu.RUnlock()
	opened.mu.Lock()
	if opened.path != path || !sameFile(opened.fi, fi) {
		if err := s.swap(path, fi); err != nil {
			opened.mu.Unlock()
			return info, nil, err
		}
	}
	return info, opened.mu.Unlock, nil
}

// swap closes trivy-db's handle and opens path, read-only. The caller
// holds opened.mu for writing.
func (s *Scanner) swap(path string, fi os.FileInfo) error {
	if err := checkBolt(path); err != nil {
		return err
	}
	if err := tdb.Close(); err != nil {
		s.log.Warn("closing the previous vulnerability database", "err", err)
	}
	opened.path, opened.fi = "", nil
	err := tdb.Init(filepath.Dir(path), tdb.WithBoltOptions(&bolt.Options{ReadOnly: true, Timeout: 5 * time.Second}))
	if err != nil {
		return fmt.Errorf("open %s: %v: %w", path, err, scanner.ErrDBCorrupt)
	}
	opened.path, opened.fi = path, fi
	s.log.Info("vulnerability database opened", "path", path, "size", fi.Size())
	return nil
}

// Scan scans img, whose manifest digest is d. Any failure (database,
// layers, analysis) is an error, never a partial report.
func (s *Scanner) Scan(ctx context.Context, d digest.Digest, img v1.Image) (*scanner.Report, error) {
	info, release, err := s.acquire()
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", d, err)
	}
	defer release()

	// Trivy creates its temporary directory once per process; Cleanup may
	// have removed it since.
	if err := os.MkdirAll(xos.TempDir(), 0o700); err != nil {
		return nil, fmt.Errorf("scan %s: %w", d, err)
	}
	c := cache.NewMemoryCache()
	art, err := aimage.NewArtifact(&image{Image: img, name: d.String()}, c, artifact.Option{
		Offline:    true,
		NoProgress: true,
		Parallel:   s.parallel,
		// Linked in by Trivy's own imports but not wanted: misconfiguration
		// and secret checks of the image config, package guesses from
		// history, and the handler that asks Rekor (online) about binaries.
		// Analyzers are process-wide singletons, and those with an Init
		// (in Trivy 0.69: dpkg copyright, Python egg, license files,
		// secrets) write their fields on every NewArtifact: a data race
		// between concurrent scans, so they are off (Debian package
		// licenses and zipped .egg files are not reported).
		DisabledAnalyzers: []analyzer.Type{analyzer.TypeHistoryDockerfile, analyzer.TypeImageConfigSecret, analyzer.TypeApkCommand,
			analyzer.TypeDpkgLicense, analyzer.TypePythonPkgEgg, analyzer.TypeLicenseFile, analyzer.TypeSecret},
		DisabledHandlers: []ftypes.HandlerType{ftypes.UnpackagedPostHandler},
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", d, err)
	}
	ref, err := art.Inspect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("scan %s: %w", d, ctx.Err())
		}
		return nil, fmt.Errorf("scan %s: %w: %w", d, scanner.ErrImage, err)
	}
	defer func() { _ = art.Clean(ref) }()

	svc := local.NewService(applier.NewApplier(c), ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(tdb.Config{}))
	resp, err := svc.Scan(ctx, ref.Name, ref.ID, ref.BlobIDs, ttypes.ScanOptions{
		PkgTypes:            []string{ttypes.PkgTypeOS, ttypes.PkgTypeLibrary},
		PkgRelationships:    ftypes.Relationships,
		Scanners:            ttypes.Scanners{ttypes.VulnerabilityScanner},
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", d, err)
	}
	return s.report(d, info, resp), nil
}

// report converts Trivy's results.
func (s *Scanner) report(d digest.Digest, info scanner.DBInfo, resp ttypes.ScanResponse) *scanner.Report {
	r := &scanner.Report{
		Digest:          d.String(),
		Scanner:         scanner.ScannerInfo{Name: "trivy", Version: s.version},
		DB:              info,
		ScannedAt:       time.Now().UTC(),
		Vulnerabilities: []scanner.Vulnerability{},
		Counts:          map[string]int{},
	}
	if resp.OS.Family != "" && resp.OS.Family != "none" {
		r.OS = &scanner.OS{Family: string(resp.OS.Family), Name: resp.OS.Name}
	}
	for _, res := range resp.Results {
		for _, p := range res.Packages {
			r.Inventory = append(r.Inventory, scanner.Package{
				Name: p.Name, Version: scanutils.FormatVersion(p), Type: string(res.Type),
				PURL: purl(p.Identifier), Target: res.Target, Licenses: p.Licenses,
			})
		}
		for _, v := range res.Vulnerabilities {
			sv := scanner.Vulnerability{
				ID: v.VulnerabilityID, Package: v.PkgName, PkgType: string(res.Type),
				PURL: purl(v.PkgIdentifier), Target: res.Target,
				InstalledVersion: v.InstalledVersion, FixedVersion: v.FixedVersion,
				Severity: severity(v.Severity), CVSS: cvss(v.CVSS, v.SeveritySource),
				Title: v.Title,
			}
			if v.DataSource != nil {
				sv.DataSource = string(v.DataSource.ID)
			} else {
				sv.DataSource = string(v.SeveritySource)
			}
			r.Vulnerabilities = append(r.Vulnerabilities, sv)
		}
	}
	r.Packages = len(r.Inventory)
	slices.SortFunc(r.Inventory, func(a, b scanner.Package) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Target, b.Target))
	})
	rank := map[string]int{scanner.SeverityCritical: 0, scanner.SeverityHigh: 1, scanner.SeverityMedium: 2, scanner.SeverityLow: 3, scanner.SeverityUnknown: 4}
	slices.SortFunc(r.Vulnerabilities, func(a, b scanner.Vulnerability) int {
		return cmp.Or(cmp.Compare(rank[a.Severity], rank[b.Severity]), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Package, b.Package), cmp.Compare(a.Target, b.Target))
	})
	for sev := range rank {
		r.Counts[sev] = 0
	}
	for _, v := range r.Vulnerabilities {
		r.Counts[v.Severity]++
	}
	return r
}

func purl(id ftypes.PkgIdentifier) string {
	if id.PURL == nil {
		return ""
	}
	return id.PURL.String()
}

func severity(s string) string {
	switch s = strings.ToUpper(s); s {
	case scanner.SeverityCritical, scanner.SeverityHigh, scanner.SeverityMedium, scanner.SeverityLow:
		return s
	}
	return scanner.SeverityUnknown
}

// cvss picks a base score: the severity source's, then NVD's, then GHSA's,
// then any; CVSS v3 before v4 before v2.
func cvss(m dbtypes.VendorCVSS, src dbtypes.SourceID) float64 {
	score := func(c dbtypes.CVSS) float64 { return cmp.Or(c.V3Score, c.V40Score, c.V2Score) }
	for _, id := range []dbtypes.SourceID{src, "nvd", "ghsa"} {
		if c, ok := m[id]; ok && score(c) > 0 {
			return score(c)
		}
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, string(id))
	}
	slices.Sort(ids)
	for _, id := range ids {
		if s := score(m[dbtypes.SourceID(id)]); s > 0 {
			return s
		}
	}
	return 0
}

// image is the fanal types.Image Trivy's image artifact reads: a
// go-containerregistry image plus names. Trivy's own loaders are not used
// (its remote loader rejects images with this go-containerregistry).
type image struct {
	v1.Image
	name string
}

func (i *image) Name() string { return i.name }

func (i *image) ID() (string, error) {
	h, err := i.ConfigName()
	if err != nil {
		return "", fmt.Errorf("%w: %w", scanner.ErrImage, err)
	}
	return h.String(), nil
}

func (i *image) RepoTags() []string    { return nil }
func (i *image) RepoDigests() []string { return nil }

// trivyVersion is the linked Trivy module's version.
func trivyVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/aquasecurity/trivy" {
				return strings.TrimPrefix(m.Version, "v")
			}
		}
	}
	return "unknown"
}
