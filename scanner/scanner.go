// Package scanner defines what a vulnerability scan of an image yields: the
// [Scanner] interface and its [Report]. The Trivy implementation lives in
// scanner/trivy alone, so that nothing else links Trivy.
//
// A scan that could not be done (no database, a database too old, an
// unreadable layer) is an error, never an empty report: the gate treats it
// as "could not check", not as "no vulnerabilities".
package scanner

import (
	"context"
	"errors"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// Severities, highest first, as they appear in [Report].Counts and
// [Vulnerability].Severity.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
	SeverityUnknown  = "UNKNOWN"
)

// Errors a scan can fail with, wrapped with details. Each means "could not
// check": none of them may be read as "no vulnerabilities".
var (
	// ErrNoDB means there is no vulnerability database to scan with.
	ErrNoDB = errors.New("no vulnerability database")
	// ErrDBCorrupt means the database or its metadata cannot be read.
	ErrDBCorrupt = errors.New("vulnerability database is corrupt")
	// ErrDBTooOld means the database was built longer ago than allowed.
	ErrDBTooOld = errors.New("vulnerability database is too old")
	// ErrImage means the image cannot be read: a missing or broken layer,
	// bytes that do not match their digest, a bad config.
	ErrImage = errors.New("image cannot be read")
)

// Scanner scans images for known vulnerabilities.
type Scanner interface {
	// Scan scans img, whose manifest digest is d.
	Scan(ctx context.Context, d digest.Digest, img v1.Image) (*Report, error)
}

// Report is the result of one scan. It is part of the policy input
// (docs/policy-input.md), so its JSON form is a contract: add fields, never
// rename them.
type Report struct {
	// Digest is the image manifest digest that was scanned.
	Digest string `json:"digest"`
	// Scanner names the scanner and its version, e.g. "trivy" "0.69.0".
	Scanner ScannerInfo `json:"scanner"`
	// DB describes the vulnerability database the scan used.
	DB DBInfo `json:"db"`
	// ScannedAt is when the scan finished.
	ScannedAt time.Time `json:"scannedAt"`
	// OS is the detected operating system, if any.
	OS *OS `json:"os,omitempty"`
	// Packages is the number of packages (OS and language) found.
	Packages int `json:"packages"`
	// Vulnerabilities lists every finding, sorted by severity (highest
	// first), then ID, then package.
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	// Counts maps each severity (all five always present) to its number of
	// findings.
	Counts map[string]int `json:"counts"`
	// Inventory lists the packages found, sorted by type, name and
	// version: what [CycloneDX] turns into a generated SBOM.
	Inventory []Package `json:"inventory,omitempty"`
}

// DBStater is implemented by scanners that can say which database they
// would scan with now, without scanning; [Queue] keys its cache by it.
type DBStater interface {
	DBInfo(ctx context.Context) (DBInfo, error)
}

// Package is one installed package found in the image.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Type is the ecosystem, as in [Vulnerability].PkgType.
	Type string `json:"type"`
	PURL string `json:"purl,omitempty"`
	// Target is where the package was found, as in [Vulnerability].Target.
	Target   string   `json:"target,omitempty"`
	Licenses []string `json:"licenses,omitempty"`
}

// ScannerInfo identifies the scanner.
type ScannerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// DBInfo describes a vulnerability database.
type DBInfo struct {
	// Version is the database schema version (Trivy's is 2).
	Version int `json:"version"`
	// BuiltAt is when the database was built (Trivy: UpdatedAt).
	BuiltAt time.Time `json:"builtAt"`
	// Source says where the database came from: a path, or an OCI
	// reference with its digest.
	Source string `json:"source,omitempty"`
	// Digest identifies this database's content, so cached results can be
	// keyed by it.
	Digest string `json:"digest,omitempty"`
}

// OS is an operating system detected in an image.
type OS struct {
	// Family is e.g. "alpine", "debian", "ubuntu", "redhat".
	Family string `json:"family"`
	// Name is the version, e.g. "3.20.3" or "12.7".
	Name string `json:"name"`
}

// Vulnerability is one finding: one vulnerability in one installed package.
type Vulnerability struct {
	// ID is e.g. "CVE-2024-6119" or "GHSA-xxxx-xxxx-xxxx".
	ID string `json:"id"`
	// Package is the package name; PkgType its ecosystem ("alpine",
	// "debian", "gobinary", "npm", "python-pkg", "jar", ...).
	Package string `json:"package"`
	PkgType string `json:"pkgType,omitempty"`
	PURL    string `json:"purl,omitempty"`
	// Target is where the package was found: the OS, or a file path.
	Target           string `json:"target,omitempty"`
	InstalledVersion string `json:"installedVersion"`
	// FixedVersion is empty when no fix is known.
	FixedVersion string `json:"fixedVersion,omitempty"`
	// Severity is one of the Severity constants.
	Severity string `json:"severity"`
	// CVSS is the base score (0 when unknown).
	CVSS float64 `json:"cvss,omitempty"`
	// DataSource names the advisory source, e.g. "alpine", "ghsa", "nvd".
	DataSource string `json:"dataSource,omitempty"`
	Title      string `json:"title,omitempty"`
}
