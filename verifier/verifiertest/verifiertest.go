// Package verifiertest writes signatures and attestations into a registry
// the way cosign v2 and v3 do, with keys, a fake Sigstore (sigstore-go's
// VirtualSigstore) or a hand-made CA, for the tests of every package that
// needs signed images: no network, no CLI.
package verifiertest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

// Registry writes evidence into the registry at Host (host:port) over
// HTTP, through go-containerregistry.
type Registry struct{ Host string }

// NewKey returns a new ECDSA P-256 key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pushImage pushes a random image to repo:tag and returns its digest.
func (r Registry) PushImage(t testing.TB, repo, tag string) digest.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(r.Host + "/" + repo + ":" + tag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return digest.Digest(d.String())
}

// signPayload returns cosign's simple-signing payload for (repo, signed)
// and its signature by key.
func (r Registry) SignPayload(t testing.TB, key crypto.Signer, repo string, signed digest.Digest) ([]byte, string) {
	t.Helper()
	ref, err := name.NewDigest(r.Host + "/" + repo + "@" + signed.String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&payload.Cosign{Image: ref}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignMessage(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return p, base64.StdEncoding.EncodeToString(sig)
}

// pushSignature stores a signature of subject the way cosign does: one
// layer under the tag sha256-<hex>.sig.
func (r Registry) PushSignature(t testing.TB, repo string, subject digest.Digest, p []byte, b64sig string) {
	t.Helper()
	r.PushSignatureLayer(t, repo, subject, p, map[string]string{"dev.cosignproject.cosign/signature": b64sig})
}

// pushSignatureLayer is pushSignature with every layer annotation given.
func (r Registry) PushSignatureLayer(t testing.TB, repo string, subject digest.Digest, p []byte, annotations map[string]string) {
	t.Helper()
	layer := static.NewLayer(p, "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       layer,
		Annotations: annotations,
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(r.Host + "/" + repo + ":" + subject.Algorithm().String() + "-" + subject.Encoded() + ".sig")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

// Media and predicate types, and a minimal SLSA v1 provenance predicate.
const (
	PayloadTypeInToto = "application/vnd.in-toto+json"
	BundleMediaType   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	CosignSign        = "https://sigstore.dev/cosign/sign/v1"
	SLSAv1            = "https://slsa.dev/provenance/v1"
	ProvenanceV1      = `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://ci.example.com/builder"}}}`
)

// Statement returns an in-toto v1 statement about d.
func Statement(t testing.TB, d digest.Digest, predicateType, predicate string) []byte {
	t.Helper()
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "image", "digest": map[string]string{d.Algorithm().String(): d.Encoded()}}},
		"predicateType": predicateType,
		"predicate":     json.RawMessage(predicate),
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SignDSSE signs PAE(payloadType, payload) with key, as DSSE specifies.
func SignDSSE(t testing.TB, key crypto.Signer, payloadType string, payload []byte) []byte {
	t.Helper()
	h := sha256.Sum256(dsse.PAE(payloadType, payload))
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// Envelope is a DSSE envelope in JSON form.
func Envelope(t testing.TB, payloadType string, payload, sig []byte) []byte {
	t.Helper()
	b, err := json.Marshal(dsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// KeyMaterial is a bundle's verification material for a key signature:
// the key's hint, as cosign writes it.
func KeyMaterial(t testing.TB, key *ecdsa.PrivateKey) *protobundle.VerificationMaterial {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{
		PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(sum[:])}}}
}

// Bundle is a v0.3 Sigstore bundle holding a DSSE envelope.
func Bundle(t testing.TB, vm *protobundle.VerificationMaterial, payloadType string, payload, sig []byte) []byte {
	t.Helper()
	b, err := protojson.Marshal(&protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// KeylessBundle signs statement through the fake Sigstore as identity and
// issuer; withTimestamp adds its timestamp authority's RFC 3161 stamp.
func KeylessBundle(t testing.TB, vs *ca.VirtualSigstore, identity, issuer string, statement []byte, withTimestamp bool) []byte {
	t.Helper()
	te, err := vs.Attest(identity, issuer, statement)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := te.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := te.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	env := sc.EnvelopeContent().RawEnvelope()
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_Certificate{
		Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}}}
	if withTimestamp {
		ts, err := te.Timestamps()
		if err != nil {
			t.Fatal(err)
		}
		tvd := &protobundle.TimestampVerificationData{}
		for _, s := range ts {
			tvd.Rfc3161Timestamps = append(tvd.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: s})
		}
		vm.TimestampVerificationData = tvd
	}
	return Bundle(t, vm, env.PayloadType, statement, sig)
}

// rawManifest is a manifest pushed as is.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// pushReferrer pushes a one-layer artifact manifest whose subject is d,
// by digest, as cosign v3 does; it returns the manifest digest.
func (r Registry) PushReferrer(t testing.TB, repo string, d digest.Digest, artifactType, layerType string, layer []byte, annotations map[string]string) digest.Digest {
	t.Helper()
	rp, err := name.NewRepository(r.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte("{}")
	for _, blob := range []struct {
		b  []byte
		mt string
	}{{cfg, ocispec.MediaTypeEmptyJSON}, {layer, layerType}} {
		if err := remote.WriteLayer(rp, static.NewLayer(blob.b, types.MediaType(blob.mt))); err != nil {
			t.Fatal(err)
		}
	}
	man := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers:       []ocispec.Descriptor{{MediaType: layerType, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1},
		Annotations:  annotations,
	}
	man.SchemaVersion = 2
	b, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	md := digest.FromBytes(b)
	ref, err := name.NewDigest(rp.String() + "@" + md.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest{b, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	return md
}

// pushBundle stores a bundle as a referrer of d, with cosign's annotation.
func (r Registry) PushBundle(t testing.TB, repo string, d digest.Digest, predicateType string, bundle []byte) digest.Digest {
	t.Helper()
	return r.PushReferrer(t, repo, d, BundleMediaType, BundleMediaType, bundle,
		map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": predicateType})
}

// pushKeyBundle signs statement with key into a bundle and stores it.
func (r Registry) PushKeyBundle(t testing.TB, key *ecdsa.PrivateKey, repo string, d digest.Digest, statement []byte) digest.Digest {
	t.Helper()
	var st struct{ PredicateType string }
	if err := json.Unmarshal(statement, &st); err != nil {
		t.Fatal(err)
	}
	sig := SignDSSE(t, key, PayloadTypeInToto, statement)
	return r.PushBundle(t, repo, d, st.PredicateType, Bundle(t, KeyMaterial(t, key), PayloadTypeInToto, statement, sig))
}

// pushAttestations stores DSSE envelopes the way cosign's tag scheme does:
// one layer each under sha256-<hex>.att.
func (r Registry) PushAttestations(t testing.TB, repo string, d digest.Digest, predicateType string, envelopes ...[]byte) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for _, env := range envelopes {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(env, "application/vnd.dsse.envelope.v1+json"),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": "", "predicateType": predicateType},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s-%s.att", r.Host, repo, d.Algorithm(), d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}
func NewVirtualSigstore(t testing.TB) *ca.VirtualSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TrustedRootJSON serialises the fake Sigstore's trusted root, as an
// operator would ship it in trusted_root.json.
func TrustedRootJSON(t testing.TB, vs *ca.VirtualSigstore) []byte {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TUFRepo writes a signed TUF repository serving trustedRoot as
// trusted_root.json, and returns its directory and initial root.json.
func TUFRepo(t testing.TB, trustedRoot []byte) (dir, rootPath string) {
	t.Helper()
	dir = t.TempDir()
	exp := time.Now().AddDate(0, 0, 30)
	rootMd, targetsMd := metadata.Root(exp), metadata.Targets(exp)
	snapshotMd, timestampMd := metadata.Snapshot(exp), metadata.Timestamp(exp)
	tf, err := metadata.TargetFile().FromBytes("trusted_root.json", trustedRoot, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	targetsMd.Signed.Targets["trusted_root.json"] = tf
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "targets", tf.Hashes["sha256"].String()+".trusted_root.json"), trustedRoot, 0o644); err != nil {
		t.Fatal(err)
	}
	signers := map[string]signature.Signer{}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := rootMd.Signed.AddKey(k, role); err != nil {
			t.Fatal(err)
		}
		if signers[role], err = signature.LoadSigner(priv, crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []func() error{
		func() error { _, err := targetsMd.Sign(signers[metadata.TARGETS]); return err },
		func() error { _, err := snapshotMd.Sign(signers[metadata.SNAPSHOT]); return err },
		func() error { _, err := timestampMd.Sign(signers[metadata.TIMESTAMP]); return err },
		func() error { _, err := rootMd.Sign(signers[metadata.ROOT]); return err },
		func() error { return rootMd.ToFile(filepath.Join(dir, "1.root.json"), true) },
		func() error { return targetsMd.ToFile(filepath.Join(dir, "1.targets.json"), true) },
		func() error { return snapshotMd.ToFile(filepath.Join(dir, "1.snapshot.json"), true) },
		func() error { return timestampMd.ToFile(filepath.Join(dir, "timestamp.json"), true) },
		func() error { return rootMd.ToFile(filepath.Join(t.TempDir(), "root.json"), true) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	rootPath = filepath.Join(t.TempDir(), "root.json")
	if err := rootMd.ToFile(rootPath, true); err != nil {
		t.Fatal(err)
	}
	return dir, rootPath
}

// deleteBlob removes a blob from a repository, leaving the manifests that
// point at it: evidence whose content went missing.
func (r Registry) DeleteBlob(t testing.TB, repo string, d digest.Digest) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+r.Host+"/v2/"+repo+"/blobs/"+d.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE blob: %s", resp.Status)
	}
}
