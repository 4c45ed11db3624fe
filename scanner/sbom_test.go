package scanner_test

import (
	"bytes"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/portcullis-dev/portcullis/scanner"
)

func TestCycloneDX(t *testing.T) {
	r := &scanner.Report{
		Digest:    "sha256:" + string(bytes.Repeat([]byte("a"), 64)),
		Scanner:   scanner.ScannerInfo{Name: "trivy", Version: "0.69.0"},
		DB:        scanner.DBInfo{Version: 2, Digest: "sha256:db"},
		ScannedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		OS:        &scanner.OS{Family: "alpine", Name: "3.20.3"},
		Packages:  3,
		Inventory: []scanner.Package{
			{Name: "musl", Version: "1.2.4-r2", Type: "alpine", PURL: "pkg:apk/alpine/musl@1.2.4-r2?distro=3.20.3", Licenses: []string{"MIT"}},
			{Name: "golang.org/x/text", Version: "v0.32.0", Type: "gobinary", PURL: "pkg:golang/golang.org/x/text@v0.32.0", Target: "usr/bin/app"},
			{Name: "golang.org/x/text", Version: "v0.32.0", Type: "gobinary", PURL: "pkg:golang/golang.org/x/text@v0.32.0", Target: "usr/bin/other"},
		},
	}
	b, err := scanner.CycloneDX(r, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("spec version %v, want 1.6", bom.SpecVersion)
	}
	if bom.Metadata == nil || bom.Metadata.Tools == nil || bom.Metadata.Tools.Components == nil {
		t.Fatalf("no metadata.tools.components: %s", b)
	}
	tool := (*bom.Metadata.Tools.Components)[0]
	if tool.Name != "portcullis" || tool.Version != "1.2.3" {
		t.Errorf("first tool %s %s, want portcullis 1.2.3", tool.Name, tool.Version)
	}
	if bom.Metadata.Component == nil || bom.Metadata.Component.Type != cdx.ComponentTypeContainer || bom.Metadata.Component.Version != r.Digest {
		t.Errorf("metadata.component = %+v, want the container image by digest", bom.Metadata.Component)
	}
	if bom.Components == nil || len(*bom.Components) != 4 { // OS + 3 packages
		t.Fatalf("components: %v, want 4", bom.Components)
	}
	refs := map[string]bool{}
	for _, c := range *bom.Components {
		if refs[c.BOMRef] {
			t.Errorf("duplicate bom-ref %q", c.BOMRef)
		}
		refs[c.BOMRef] = true
	}
	gen, err := scanner.IsGenerated(b)
	if err != nil || !gen {
		t.Fatalf("IsGenerated = %v, %v; want true", gen, err)
	}

	// A builder's SBOM, without the mark, is not generated.
	builder := cdx.NewBOM()
	builder.Metadata = &cdx.Metadata{Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "syft"}}}}
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).Encode(builder); err != nil {
		t.Fatal(err)
	}
	if gen, err := scanner.IsGenerated(buf.Bytes()); err != nil || gen {
		t.Fatalf("IsGenerated(builder SBOM) = %v, %v; want false", gen, err)
	}

	// A report without its inventory cannot make an SBOM.
	if _, err := scanner.CycloneDX(&scanner.Report{Packages: 2}, "1"); err == nil {
		t.Fatal("CycloneDX of a report without inventory succeeded")
	}
}
