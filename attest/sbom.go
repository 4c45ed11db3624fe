package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxcommon "github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
	spdxtv "github.com/spdx/tools-golang/tagvalue"
)

// SBOM formats, as in [SBOM].Format.
const (
	FormatSPDX      = "spdx"
	FormatCycloneDX = "cyclonedx"
)

// SBOM is a software bill of materials, normalized across SPDX and CycloneDX.
type SBOM struct {
	// Format is FormatSPDX or FormatCycloneDX.
	Format string `json:"format"`
	// SpecVersion is the format's version, e.g. "2.3" or "1.6".
	SpecVersion string `json:"specVersion"`
	// Components are the SPDX packages, or the CycloneDX components
	// (nested ones flattened, depth first), in document order. The
	// CycloneDX metadata.component, which describes the SBOM's subject, is
	// not one of them.
	Components []Component `json:"components"`
	// Licenses are the distinct license expressions and names of all
	// components, sorted.
	Licenses []string `json:"licenses"`
	// LicenseIDs are the distinct SPDX license identifiers (and
	// LicenseRef-...) named in those expressions, sorted, so a policy can
	// deny "GPL-3.0-only" even inside "(MIT OR GPL-3.0-only)". Free-text
	// license names contribute none.
	LicenseIDs []string `json:"licenseIds"`
}

// Kind returns KindSBOM.
func (*SBOM) Kind() string { return KindSBOM }

// Component is one package of an SBOM.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// PURL is the package URL, e.g. "pkg:deb/debian/openssl@3.0.11-1~deb12u2".
	PURL string `json:"purl,omitempty"`
	// Licenses are the component's license expressions or names. For SPDX:
	// licenseConcluded then licenseDeclared when different, without NONE and
	// NOASSERTION. For CycloneDX: each license's id, else its name, or the
	// expression.
	Licenses []string `json:"licenses,omitempty"`
}

// parseSPDXPredicate decodes an SPDX predicate: an SPDX JSON document, or a
// JSON string holding an SPDX document in JSON or tag-value form (cosign
// attest --type spdx wraps the file's text in a string).
func parseSPDXPredicate(raw json.RawMessage) (*SBOM, error) {
	if isJSONNull(raw) {
		return nil, errors.New("attest: spdx: predicate is empty")
	}
	if bytes.TrimSpace(raw)[0] != '"' {
		return parseSPDXJSON(raw)
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, fmt.Errorf("attest: spdx: %w", err)
	}
	if t := strings.TrimSpace(text); strings.HasPrefix(t, "{") {
		return parseSPDXJSON([]byte(t))
	}
	doc, err := spdxtv.Read(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("attest: spdx tag-value: %w", err)
	}
	return fromTagValue(doc).summary()
}

// spdxDocument is the part of an SPDX 2.2/2.3 JSON document the summary
// reads, decoded in one pass. tools-golang's v2_3.Document is not used for
// JSON: its UnmarshalJSON decodes the document twice and every package
// twice, and rebuilds the relationships (about 5x slower on a 500-package
// SBOM), and it rejects a whole document for one odd field the summary does
// not read. Field names and the external reference type are tools-golang's.
type spdxDocument struct {
	SPDXVersion string        `json:"spdxVersion"`
	Packages    []spdxPackage `json:"packages"`
}

type spdxPackage struct {
	Name             string `json:"name"`
	Version          string `json:"versionInfo"`
	LicenseConcluded string `json:"licenseConcluded"`
	LicenseDeclared  string `json:"licenseDeclared"`
	// tools-golang's type normalizes the SPDX 2.2 category spelling
	// PACKAGE_MANAGER to PACKAGE-MANAGER.
	ExternalRefs []spdx.PackageExternalReference `json:"externalRefs"`
}

func parseSPDXJSON(b []byte) (*SBOM, error) {
	var doc spdxDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("attest: spdx: %w", err)
	}
	return doc.summary()
}

// fromTagValue converts a document read by tools-golang's tag-value reader.
func fromTagValue(d *spdx.Document) *spdxDocument {
	out := &spdxDocument{SPDXVersion: d.SPDXVersion, Packages: make([]spdxPackage, 0, len(d.Packages))}
	for _, p := range d.Packages {
		if p == nil {
			continue
		}
		sp := spdxPackage{
			Name:             p.PackageName,
			Version:          p.PackageVersion,
			LicenseConcluded: p.PackageLicenseConcluded,
			LicenseDeclared:  p.PackageLicenseDeclared,
		}
		for _, r := range p.PackageExternalReferences {
			if r != nil {
				sp.ExternalRefs = append(sp.ExternalRefs, *r)
			}
		}
		out.Packages = append(out.Packages, sp)
	}
	return out
}

func (doc *spdxDocument) summary() (*SBOM, error) {
	version, ok := strings.CutPrefix(doc.SPDXVersion, "SPDX-")
	switch {
	case doc.SPDXVersion == "":
		return nil, errors.New("attest: spdx: spdxVersion is missing (not an SPDX document)")
	case !ok || (version != "2.2" && version != "2.3"):
		return nil, fmt.Errorf("attest: spdx: unsupported spdxVersion %q (want SPDX-2.2 or SPDX-2.3)", doc.SPDXVersion)
	}
	out := &SBOM{Format: FormatSPDX, SpecVersion: version, Components: make([]Component, 0, len(doc.Packages))}
	ls := newLicenseSet()
	for i := range doc.Packages {
		p := &doc.Packages[i]
		c := Component{Name: p.Name, Version: p.Version}
		for _, ref := range p.ExternalRefs {
			if ref.Category == spdxcommon.CategoryPackageManager && ref.RefType == "purl" {
				c.PURL = ref.Locator
				break
			}
		}
		for _, l := range []string{p.LicenseConcluded, p.LicenseDeclared} {
			if isLicenseValue(l) && !slices.Contains(c.Licenses, l) {
				c.Licenses = append(c.Licenses, l)
				ls.addExpression(l)
			}
		}
		out.Components = append(out.Components, c)
	}
	out.Licenses, out.LicenseIDs = ls.sorted()
	return out, nil
}

// parseCycloneDX decodes a CycloneDX JSON BOM.
func parseCycloneDX(raw json.RawMessage) (*SBOM, error) {
	if isJSONNull(raw) {
		return nil, errors.New("attest: cyclonedx: predicate is empty")
	}
	var bom cdx.BOM
	if err := json.Unmarshal(raw, &bom); err != nil {
		return nil, fmt.Errorf("attest: cyclonedx: %w", err)
	}
	if bom.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("attest: cyclonedx: bomFormat is %q, want %q", bom.BOMFormat, cdx.BOMFormat)
	}
	if bom.SpecVersion == 0 {
		return nil, errors.New("attest: cyclonedx: specVersion is missing")
	}
	if bom.SpecVersion < cdx.SpecVersion1_2 {
		return nil, fmt.Errorf("attest: cyclonedx: specVersion %s has no JSON format", bom.SpecVersion)
	}
	out := &SBOM{Format: FormatCycloneDX, SpecVersion: bom.SpecVersion.String(), Components: []Component{}}
	ls := newLicenseSet()
	if bom.Components != nil {
		out.Components = appendCycloneDX(out.Components, *bom.Components, ls)
	}
	out.Licenses, out.LicenseIDs = ls.sorted()
	return out, nil
}

// appendCycloneDX flattens components depth first. Recursion is bounded by
// encoding/json's nesting limit.
func appendCycloneDX(out []Component, comps []cdx.Component, ls *licenseSet) []Component {
	for i := range comps {
		cc := &comps[i]
		c := Component{Name: cc.Name, Version: cc.Version, PURL: cc.PackageURL}
		if cc.Licenses != nil {
			for _, lc := range *cc.Licenses {
				var l string
				switch {
				case lc.License != nil && lc.License.ID != "":
					l = lc.License.ID
					ls.addExpression(l)
				case lc.License != nil && lc.License.Name != "":
					l = lc.License.Name
					ls.addName(l)
				case lc.Expression != "":
					l = lc.Expression
					ls.addExpression(l)
				default:
					continue
				}
				if !slices.Contains(c.Licenses, l) {
					c.Licenses = append(c.Licenses, l)
				}
			}
		}
		out = append(out, c)
		if cc.Components != nil {
			out = appendCycloneDX(out, *cc.Components, ls)
		}
	}
	return out
}
