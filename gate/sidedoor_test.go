package gate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/store"
	"github.com/portcullis-dev/portcullis/verifier/source"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// The tests of invariants I1 (protected means decided) and I2 (promotion
// carries only evidence) of docs/gate.md, through the registry's HTTP API.

const (
	mtOCIManifest = ocispec.MediaTypeImageManifest
	mtOCIIndex    = ocispec.MediaTypeImageIndex
	mtDockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtSimpleSign  = "application/vnd.dev.cosign.simplesigning.v1+json"
	mtCosignSig   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	mtSPDX        = "application/spdx+json"
)

// do sends one request to the registry and returns the status and body.
func (e *env) do(t *testing.T, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+e.host+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mount links blob d of from into to (allowed in a protected repository:
// the registry has the bytes).
func (e *env) mount(t *testing.T, to, from string, d digest.Digest) {
	t.Helper()
	if status, body := e.do(t, http.MethodPost, "/v2/"+to+"/blobs/uploads/?mount="+d.String()+"&from="+from, "", nil); status != http.StatusCreated {
		t.Fatalf("mount %s from %s into %s: %d %s", d, from, to, status, body)
	}
}

// pushBlob uploads content into repo (a staging repository) in one POST.
func (e *env) pushBlob(t *testing.T, repo string, content []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(content)
	if status, body := e.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", content); status != http.StatusCreated {
		t.Fatalf("push blob into %s: %d %s", repo, status, body)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(content))}
}

func (e *env) putManifest(t *testing.T, repo, ref, mediaType string, body []byte) (int, string) {
	t.Helper()
	return e.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, body)
}

// exists reports whether repo serves ref (a tag or digest).
func (e *env) exists(t *testing.T, repo, ref string) bool {
	t.Helper()
	status, _ := e.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, "", nil)
	return status == http.StatusOK
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// imageManifest is an image manifest of media type mt.
func imageManifest(t *testing.T, mt string, config ocispec.Descriptor, layers []ocispec.Descriptor, subject *ocispec.Descriptor, artifactType string) []byte {
	t.Helper()
	m := map[string]any{"schemaVersion": 2, "mediaType": mt, "config": config, "layers": layers}
	if subject != nil {
		m["subject"] = subject
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	return mustMarshal(t, m)
}

// runnable pushes a random image to staging/evil, mounts its blobs into
// prod/app, and returns its config and layer descriptors.
func (e *env) runnable(t *testing.T) (config ocispec.Descriptor, layers []ocispec.Descriptor) {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfgBytes, _ := img.RawConfigFile()
	config = e.pushBlob(t, "staging/evil", cfgBytes)
	config.MediaType = ocispec.MediaTypeImageConfig
	e.mount(t, "prod/app", "staging/evil", config.Digest)
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		desc := e.pushBlob(t, "staging/evil", b)
		desc.MediaType = ocispec.MediaTypeImageLayerGzip
		e.mount(t, "prod/app", "staging/evil", desc.Digest)
		layers = append(layers, desc)
	}
	return config, layers
}

// TestNoSideDoorIntoProd is I1: whatever manifest is PUT into a protected
// repository, under whatever tag form, with or without a subject, nothing
// undecided becomes pullable, and no tag moves. Only evidence about an
// image the gate allowed is stored.
func TestNoSideDoorIntoProd(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	d := e.signed(t, e.release, vt.ProvenanceV1)
	if err := e.copyTo(t, d, "1.0"); err != nil {
		t.Fatalf("promotion of a signed image: %v", err)
	}
	denied := e.PushImage(t, "staging/app", "unsigned")
	if err := e.copyTo(t, denied, "2.0"); err == nil {
		t.Fatal("an unsigned image was promoted")
	}
	dm, err := e.reg.Store().Source().Manifest(t.Context(), "prod/app", d)
	if err != nil {
		t.Fatal(err)
	}
	subject := &ocispec.Descriptor{MediaType: dm.MediaType, Digest: d, Size: int64(len(dm.Content))}
	config, layers := e.runnable(t)
	dockerConfig := config
	dockerConfig.MediaType = "application/vnd.docker.container.image.v1+json"
	var dockerLayers []ocispec.Descriptor
	for _, l := range layers {
		l.MediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
		dockerLayers = append(dockerLayers, l)
	}
	// Evidence-shaped manifests that are not evidence about d: a tar layer
	// disguised as a signature, and a real signature of another image.
	disguised := make([]ocispec.Descriptor, len(layers))
	for i, l := range layers {
		l.MediaType = mtSimpleSign
		disguised[i] = l
	}
	p, sig := e.SignPayload(t, e.release, "staging/app", denied)
	e.PushSignature(t, "staging/app", denied, p, sig)
	payload := ocispec.Descriptor{MediaType: mtSimpleSign, Digest: digest.FromBytes(p), Size: int64(len(p)),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": sig}}
	e.mount(t, "prod/app", "staging/app", payload.Digest)
	child := []map[string]any{{"mediaType": dm.MediaType, "digest": d, "size": len(dm.Content)}}

	type body struct {
		name, mediaType string
		make            func(subject *ocispec.Descriptor) []byte
	}
	bodies := []body{
		{"oci image", mtOCIManifest, func(s *ocispec.Descriptor) []byte { return imageManifest(t, mtOCIManifest, config, layers, s, "") }},
		{"docker image", mtDockerV2, func(s *ocispec.Descriptor) []byte {
			return imageManifest(t, mtDockerV2, dockerConfig, dockerLayers, s, "")
		}},
		{"oci index of the promoted image", mtOCIIndex, func(s *ocispec.Descriptor) []byte {
			m := map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": child}
			if s != nil {
				m["subject"] = s
			}
			return mustMarshal(t, m)
		}},
		{"docker list of the promoted image", mtDockerList, func(s *ocispec.Descriptor) []byte {
			m := map[string]any{"schemaVersion": 2, "mediaType": mtDockerList, "manifests": child}
			if s != nil {
				m["subject"] = s
			}
			return mustMarshal(t, m)
		}},
		{"tar layers typed as a signature", mtOCIManifest, func(s *ocispec.Descriptor) []byte {
			return imageManifest(t, mtOCIManifest, config, disguised, s, mtCosignSig)
		}},
		{"a signature of another image", mtOCIManifest, func(s *ocispec.Descriptor) []byte {
			return imageManifest(t, mtOCIManifest, config, []ocispec.Descriptor{payload}, s, "")
		}},
	}
	tags := []string{"", "1.0", "new", source.CosignTag(d, "sig"), source.CosignTag(d, "att"), source.CosignTag(d, "sbom"),
		source.CosignTag(denied, "sig"), store.FallbackTag(d), "sha256-" + d.Encoded() + ".sig.x"}
	for _, b := range bodies {
		for _, withSubject := range []bool{false, true} {
			for _, tag := range tags {
				var s *ocispec.Descriptor
				if withSubject {
					s = subject
				}
				raw := b.make(s)
				md := digest.FromBytes(raw)
				ref := tag
				if ref == "" {
					ref = md.String()
				}
				t.Run(fmt.Sprintf("%s/subject=%v/tag=%q", b.name, withSubject, tag), func(t *testing.T) {
					status, resp := e.putManifest(t, "prod/app", ref, b.mediaType, raw)
					if status != http.StatusForbidden || !strings.Contains(resp, "DENIED") {
						t.Errorf("PUT: %d %s, want 403 DENIED", status, resp)
					}
					if e.exists(t, "prod/app", md.String()) {
						t.Errorf("prod/app serves %s by digest", md)
					}
					if tag != "" && tag != "1.0" && e.exists(t, "prod/app", tag) {
						t.Errorf("prod/app has tag %s", tag)
					}
					if got, err := e.reg.Store().Source().Resolve(t.Context(), "prod/app", "1.0"); err != nil || got != d {
						t.Errorf("prod/app:1.0 = %s, %v; want %s", got, err, d)
					}
				})
			}
		}
	}
	if e.exists(t, "prod/app", denied.String()) {
		t.Fatal("the denied image is pullable from prod by digest")
	}
	// The attacker's blobs were mounted into prod/app, but no manifest
	// there names them: they cannot be read from it, nor mounted out of it.
	for _, b := range append([]ocispec.Descriptor{config}, layers...) {
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			if status, _ := e.do(t, method, "/v2/prod/app/blobs/"+b.Digest.String(), "", nil); status != http.StatusNotFound {
				t.Errorf("%s prod/app blob %s: %d, want 404", method, b.Digest, status)
			}
		}
		if status, _ := e.do(t, http.MethodPost, "/v2/staging/other/blobs/uploads/?mount="+b.Digest.String()+"&from=prod/app", "", nil); status != http.StatusAccepted {
			t.Errorf("mount of blob %s from prod/app: %d, want 202 (a new upload)", b.Digest, status)
		}
	}

	// Evidence about the promoted image is accepted: a signature under its
	// cosign tag, and a Sigstore bundle referrer by digest. Their blobs are
	// in the registry already (new content enters through staging).
	t.Run("evidence is accepted", func(t *testing.T) {
		p, sig := e.SignPayload(t, e.release, "staging/app", d)
		e.PushSignature(t, "staging/app", d, p, sig)
		e.mount(t, "prod/app", "staging/app", digest.FromBytes(p))
		good := imageManifest(t, mtOCIManifest, config, []ocispec.Descriptor{{MediaType: mtSimpleSign, Digest: digest.FromBytes(p),
			Size: int64(len(p)), Annotations: map[string]string{"dev.cosignproject.cosign/signature": sig}}}, nil, "")
		if status, resp := e.putManifest(t, "prod/app", source.CosignTag(d, "sig"), mtOCIManifest, good); status != http.StatusCreated {
			t.Fatalf("a signature of the promoted image under its .sig tag: %d %s", status, resp)
		}
		// The same signature under the .att tag is the wrong kind.
		if status, _ := e.putManifest(t, "prod/app", source.CosignTag(d, "att"), mtOCIManifest, good); status != http.StatusForbidden {
			t.Fatalf("a signature under the .att tag: %d, want 403", status)
		}
		md := e.PushKeyBundle(t, e.release, "staging/app", d, vt.Statement(t, d, vt.CosignSign, `{}`))
		bm, err := e.reg.Store().Source().Manifest(t.Context(), "staging/app", md)
		if err != nil {
			t.Fatal(err)
		}
		var om ocispec.Manifest
		_ = json.Unmarshal(bm.Content, &om)
		e.mount(t, "prod/app", "staging/app", om.Config.Digest)
		e.mount(t, "prod/app", "staging/app", om.Layers[0].Digest)
		if status, resp := e.putManifest(t, "prod/app", md.String(), mtOCIManifest, bm.Content); status != http.StatusCreated {
			t.Fatalf("a bundle about the promoted image: %d %s", status, resp)
		}
		if !e.exists(t, "prod/app", md.String()) {
			t.Fatal("the accepted bundle is not served")
		}
	})
}

// TestPromotionCarriesOnlyEvidence is I2: a promotion links the image and
// the evidence about it, and leaves behind (naming them, in the response
// and the audit record) whatever else staging says is about it: a runnable
// image pushed as a referrer or under a cosign tag, or an index.
func TestPromotionCarriesOnlyEvidence(t *testing.T) {
	for _, how := range []string{"manifest PUT", "promotions API"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, policyDir(t, requireRelease, nil), nil)
			d := e.signed(t, e.release, vt.ProvenanceV1)
			dm, _ := e.reg.Store().Source().Manifest(t.Context(), "staging/app", d)
			subject := &ocispec.Descriptor{MediaType: dm.MediaType, Digest: d, Size: int64(len(dm.Content))}
			// The attacker, with push rights to staging only.
			img, _ := random.Image(512, 1)
			cfgBytes, _ := img.RawConfigFile()
			config := e.pushBlob(t, "staging/app", cfgBytes)
			config.MediaType = ocispec.MediaTypeImageConfig
			ls, _ := img.Layers()
			rc, _ := ls[0].Compressed()
			lb, _ := io.ReadAll(rc)
			layer := e.pushBlob(t, "staging/app", lb)
			layer.MediaType = ocispec.MediaTypeImageLayerGzip
			referrer := imageManifest(t, mtOCIManifest, config, []ocispec.Descriptor{layer}, subject, "")
			if status, resp := e.putManifest(t, "staging/app", digest.FromBytes(referrer).String(), mtOCIManifest, referrer); status != http.StatusCreated {
				t.Fatalf("push the referrer: %d %s", status, resp)
			}
			underTag := imageManifest(t, mtOCIManifest, config, []ocispec.Descriptor{layer}, nil, "")
			if status, resp := e.putManifest(t, "staging/app", source.CosignTag(d, "att"), mtOCIManifest, underTag); status != http.StatusCreated {
				t.Fatalf("push under the .att tag: %d %s", status, resp)
			}
			// An SBOM referrer is evidence, and goes along.
			sbom := e.PushReferrer(t, "staging/app", d, mtSPDX, mtSPDX, []byte(`{"spdxVersion":"SPDX-2.3"}`), nil)

			var left []contract.LeftBehind
			if how == "manifest PUT" {
				if err := e.copyTo(t, d, "1.0"); err != nil {
					t.Fatalf("promotion: %v", err)
				}
			} else {
				rec := newRecorder(e.reg.PromotionsHandler(), `{"source":"staging/app@`+d.String()+`","target":"prod/app:1.0"}`)
				var r registry.PromotionResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || !r.Allowed {
					t.Fatalf("promotion: %d %s", rec.Code, rec.Body)
				}
				left = r.LeftBehind
			}
			for _, md := range []digest.Digest{digest.FromBytes(referrer), digest.FromBytes(underTag)} {
				if e.exists(t, "prod/app", md.String()) {
					t.Errorf("prod/app serves the attacker's %s", md)
				}
			}
			if e.exists(t, "prod/app", source.CosignTag(d, "att")) {
				t.Error("the .att tag holding an image was carried")
			}
			if !e.exists(t, "prod/app", sbom.String()) {
				t.Error("the SBOM referrer was not carried")
			}
			rec := e.rec.last()
			if rec == nil || !rec.Allow {
				t.Fatalf("decision %+v", rec)
			}
			recorded := gate.AuditRecord(rec).LeftBehind
			if how == "manifest PUT" {
				left = rec.Request.LeftBehind
			}
			var names []digest.Digest
			for _, l := range left {
				names = append(names, l.Digest)
			}
			for _, md := range []digest.Digest{digest.FromBytes(referrer), digest.FromBytes(underTag)} {
				if !slices.Contains(names, md) {
					t.Errorf("left behind %v does not name %s", left, md)
				}
			}
			if len(recorded) != len(rec.Request.LeftBehind) || len(recorded) < 2 {
				t.Errorf("audit record leftBehind %q", recorded)
			}
		})
	}
}

// pushNew uploads content into repo in one POST and returns the status
// (new content into a protected repository is linked for evidence only).
func (e *env) pushNew(t *testing.T, repo string, content []byte) int {
	t.Helper()
	status, _ := e.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(content).String(), "application/octet-stream", content)
	return status
}

// TestEvidenceAfterPromotion is finding 8 of the promises issue: a
// signature or an attestation of an image already in prod/ may be pushed
// there with new blobs (cosign sign prod/app@D), by the tag scheme and as a
// referrer. Those blobs serve an evidence manifest about an image promoted
// there and nothing else: no image, index or disguised evidence may use
// them, they are not readable on their own, and they cannot be mounted
// elsewhere.
func TestEvidenceAfterPromotion(t *testing.T) {
	e := newEnv(t, policyDir(t, requireRelease, nil), nil)
	d := e.signed(t, e.release, vt.ProvenanceV1)
	if err := e.copyTo(t, d, "1.0"); err != nil {
		t.Fatalf("promotion of a signed image: %v", err)
	}
	dm, err := e.reg.Store().Source().Manifest(t.Context(), "prod/app", d)
	if err != nil {
		t.Fatal(err)
	}
	subject := &ocispec.Descriptor{MediaType: dm.MediaType, Digest: d, Size: int64(len(dm.Content))}

	// A co-signature by the tag scheme, as cosign v2 pushes it: its
	// payload and config are new content in prod/app.
	p, sig := e.SignPayload(t, e.release, "prod/app", d)
	e.PushSignature(t, "prod/app", d, p, sig)
	sigTag := source.CosignTag(d, "sig")
	if !e.exists(t, "prod/app", sigTag) {
		t.Fatal("the co-signature is not in prod/app")
	}
	if status, _ := e.do(t, http.MethodGet, "/v2/prod/app/blobs/"+digest.FromBytes(p).String(), "", nil); status != http.StatusOK {
		t.Fatalf("the co-signature's payload is not served from prod/app: %d", status)
	}
	// The same as a referrer (OCI 1.1 subject), on an empty config.
	p2, sig2 := e.SignPayload(t, e.release, "prod/app", d)
	p2 = append(p2, ' ') // other bytes than the tag scheme's payload
	if e.pushNew(t, "prod/app", p2) != http.StatusCreated || e.pushNew(t, "prod/app", []byte("{}")) != http.StatusCreated {
		t.Fatal("new evidence blobs refused in prod/app")
	}
	emptyConfig := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes([]byte("{}")), Size: 2}
	referrer := imageManifest(t, mtOCIManifest, emptyConfig, []ocispec.Descriptor{{MediaType: mtSimpleSign, Digest: digest.FromBytes(p2), Size: int64(len(p2)),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": sig2}}}, subject, mtCosignSig)
	if status, body := e.putManifest(t, "prod/app", digest.FromBytes(referrer).String(), mtOCIManifest, referrer); status != http.StatusCreated {
		t.Fatalf("a signature referrer of a promoted image: %d %s", status, body)
	}

	// The attacks. A runnable image's config and layers, uploaded into
	// prod/app as if they were evidence.
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfgBytes, _ := img.RawConfigFile()
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgBytes), Size: int64(len(cfgBytes))}
	if e.pushNew(t, "prod/app", cfgBytes) != http.StatusCreated {
		t.Fatal("a new blob refused in prod/app")
	}
	var layers, disguised []ocispec.Descriptor
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if e.pushNew(t, "prod/app", b) != http.StatusCreated {
			t.Fatal("a new blob refused in prod/app")
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(len(b))}
		layers = append(layers, desc)
		desc.MediaType = mtSimpleSign
		disguised = append(disguised, desc)
	}
	// None of it is readable from prod/app: no manifest there names it.
	for _, b := range append([]ocispec.Descriptor{config}, layers...) {
		if status, _ := e.do(t, http.MethodGet, "/v2/prod/app/blobs/"+b.Digest.String(), "", nil); status != http.StatusNotFound {
			t.Fatalf("blob %s uploaded as evidence is served from prod/app: %d", b.Digest, status)
		}
	}
	image := imageManifest(t, mtOCIManifest, config, layers, nil, "")
	imageDigest := digest.FromBytes(image)
	for _, tt := range []struct {
		name, ref string
		body      []byte
	}{
		{"an image under a tag", "evil", image},
		{"an image by digest", imageDigest.String(), image},
		{"an image under the cosign tag", sigTag, image},
		{"an image under the .att tag", source.CosignTag(d, "att"), image},
		{"an image with the promoted image as subject", "", imageManifest(t, mtOCIManifest, config, layers, subject, "")},
		{"an image typed as a signature referrer", "", imageManifest(t, mtOCIManifest, config, layers, subject, mtCosignSig)},
		{"tar layers typed as a signature under the cosign tag", sigTag, imageManifest(t, mtOCIManifest, config, disguised, nil, "")},
		{"tar layers typed as a signature, as a referrer with an image config", "", imageManifest(t, mtOCIManifest, config, disguised, subject, "")},
		{"an index of the image", "idx", mustMarshal(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex,
			"manifests": []map[string]any{{"mediaType": mtOCIManifest, "digest": imageDigest, "size": len(image)}}})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.ref
			if ref == "" {
				ref = digest.FromBytes(tt.body).String()
			}
			mt := mtOCIManifest
			if strings.Contains(tt.name, "index") {
				mt = mtOCIIndex
			}
			status, body := e.putManifest(t, "prod/app", ref, mt, tt.body)
			if status != http.StatusForbidden || !strings.Contains(body, "DENIED") {
				t.Fatalf("%d %s, want 403 DENIED", status, body)
			}
			if e.exists(t, "prod/app", digest.FromBytes(tt.body).String()) {
				t.Fatal("the manifest is in prod/app")
			}
		})
	}
	if got, err := e.reg.Store().Source().Resolve(t.Context(), "prod/app", sigTag); err != nil || !e.exists(t, "prod/app", got.String()) {
		t.Fatalf("the cosign tag moved or went: %s %v", got, err)
	}
	// The blobs never leave prod/app by a mount: into another protected
	// repository or into staging, the client is asked to upload (202),
	// which the target then decides on.
	for _, to := range []string{"prod/other", "staging/evil"} {
		for _, b := range append([]ocispec.Descriptor{config}, layers...) {
			status, _ := e.do(t, http.MethodPost, "/v2/"+to+"/blobs/uploads/?mount="+b.Digest.String()+"&from=prod/app", "", nil)
			if status != http.StatusAccepted {
				t.Fatalf("mount of %s from prod/app into %s: %d, want 202", b.Digest, to, status)
			}
		}
	}
	// Uploading the same bytes again does not make them ordinary, in
	// prod/app or another protected repository.
	for _, repo := range []string{"prod/app", "prod/other"} {
		for _, b := range [][]byte{cfgBytes} {
			if e.pushNew(t, repo, b) != http.StatusCreated {
				t.Fatalf("upload into %s refused", repo)
			}
		}
		if status, body := e.putManifest(t, repo, "evil2", mtOCIManifest, image); status != http.StatusForbidden {
			t.Fatalf("an image over evidence blobs uploaded twice into %s: %d %s", repo, status, body)
		}
	}
	// Evidence about an image that is not in prod/app is refused, and its
	// uploaded payload stays unreadable.
	other := e.PushImage(t, "staging/app", "other")
	po, so := e.SignPayload(t, e.release, "prod/app", other)
	if e.pushNew(t, "prod/app", po) != http.StatusCreated {
		t.Fatal("a new blob refused in prod/app")
	}
	otherSig := imageManifest(t, mtOCIManifest, emptyConfig, []ocispec.Descriptor{{MediaType: mtSimpleSign, Digest: digest.FromBytes(po), Size: int64(len(po)),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": so}}}, nil, "")
	if status, body := e.putManifest(t, "prod/app", source.CosignTag(other, "sig"), mtOCIManifest, otherSig); status != http.StatusForbidden {
		t.Fatalf("a signature of an image not promoted: %d %s", status, body)
	}
	if status, _ := e.do(t, http.MethodGet, "/v2/prod/app/blobs/"+digest.FromBytes(po).String(), "", nil); status != http.StatusNotFound {
		t.Fatalf("the refused signature's payload is served from prod/app: %d", status)
	}
}
