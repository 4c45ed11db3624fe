package verifier_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	payloadTypeInToto = "application/vnd.in-toto+json"
	bundleMediaType   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	cosignSign        = "https://sigstore.dev/cosign/sign/v1"
	slsaV1            = "https://slsa.dev/provenance/v1"
	provenanceV1      = `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://ci.example.com/builder"}}}`
)

// statementFor returns an in-toto v1 statement about d.
func statementFor(t testing.TB, d digest.Digest, predicateType, predicate string) []byte {
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

// signDSSE signs PAE(payloadType, payload) with key, as DSSE specifies.
func signDSSE(t testing.TB, key crypto.Signer, payloadType string, payload []byte) []byte {
	t.Helper()
	h := sha256.Sum256(dsse.PAE(payloadType, payload))
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// envelopeJSON is a DSSE envelope in JSON form.
func envelopeJSON(t testing.TB, payloadType string, payload, sig []byte) []byte {
	t.Helper()
	b, err := json.Marshal(dsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyMaterial is a bundle's verification material for a key signature:
// the key's hint, as cosign writes it.
func keyMaterial(t testing.TB, key *ecdsa.PrivateKey) *protobundle.VerificationMaterial {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{
		PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(sum[:])}}}
}

// bundleJSON is a v0.3 Sigstore bundle holding a DSSE envelope.
func bundleJSON(t testing.TB, vm *protobundle.VerificationMaterial, payloadType string, payload, sig []byte) []byte {
	t.Helper()
	b, err := protojson.Marshal(&protobundle.Bundle{
		MediaType:            bundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keylessBundle signs statement through the fake Sigstore as identity and
// issuer; withTimestamp adds its timestamp authority's RFC 3161 stamp.
func keylessBundle(t testing.TB, vs *ca.VirtualSigstore, identity, issuer string, statement []byte, withTimestamp bool) []byte {
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
	return bundleJSON(t, vm, env.PayloadType, statement, sig)
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
func (f *fixture) pushReferrer(t testing.TB, repo string, d digest.Digest, artifactType, layerType string, layer []byte, annotations map[string]string) digest.Digest {
	t.Helper()
	r, err := name.NewRepository(f.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte("{}")
	for _, blob := range []struct {
		b  []byte
		mt string
	}{{cfg, ocispec.MediaTypeEmptyJSON}, {layer, layerType}} {
		if err := remote.WriteLayer(r, static.NewLayer(blob.b, types.MediaType(blob.mt))); err != nil {
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
	ref, err := name.NewDigest(r.String() + "@" + md.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest{b, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	return md
}

// pushBundle stores a bundle as a referrer of d, with cosign's annotation.
func (f *fixture) pushBundle(t testing.TB, repo string, d digest.Digest, predicateType string, bundle []byte) digest.Digest {
	t.Helper()
	return f.pushReferrer(t, repo, d, bundleMediaType, bundleMediaType, bundle,
		map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": predicateType})
}

// pushKeyBundle signs statement with key into a bundle and stores it.
func (f *fixture) pushKeyBundle(t testing.TB, key *ecdsa.PrivateKey, repo string, d digest.Digest, statement []byte) digest.Digest {
	t.Helper()
	var st struct{ PredicateType string }
	if err := json.Unmarshal(statement, &st); err != nil {
		t.Fatal(err)
	}
	sig := signDSSE(t, key, payloadTypeInToto, statement)
	return f.pushBundle(t, repo, d, st.PredicateType, bundleJSON(t, keyMaterial(t, key), payloadTypeInToto, statement, sig))
}

// pushAttestations stores DSSE envelopes the way cosign's tag scheme does:
// one layer each under sha256-<hex>.att.
func (f *fixture) pushAttestations(t testing.TB, repo string, d digest.Digest, predicateType string, envelopes ...[]byte) {
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
	ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s-%s.att", f.host, repo, d.Algorithm(), d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}
