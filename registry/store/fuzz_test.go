package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Seeds shared by the manifest fuzzer: one of each kind the registry accepts.
const (
	seedCfg   = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
	seedLayer = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","size":3}`
)

var manifestSeeds = []struct{ contentType, body string }{
	{MediaTypeOCIManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":` + seedCfg + `,"layers":[` + seedLayer + `]}`},
	{"", `{"schemaVersion":2,"config":` + seedCfg + `,"layers":[]}`},
	{MediaTypeOCIManifest, `{"schemaVersion":2,"artifactType":"application/spdx+json","config":` + seedCfg + `,"layers":[` + seedLayer + `],"subject":` + seedLayer + `,"annotations":{"a":"b"}}`},
	{MediaTypeOCIIndex, `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIIndex + `","manifests":[` + seedLayer + `]}`},
	{"", `{"schemaVersion":2,"manifests":[]}`},
	{MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":` + seedCfg + `,"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","size":3,"urls":["https://example.com/l"]}]}`},
	{MediaTypeDockerList, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerList + `","manifests":[]}`},
	// Embedded data: "{}" is the config above.
	{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}}`},
	{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha512:` + strings.Repeat("0", 128) + `","size":0}}`},
	{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":0}}`},
	{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:","size":0}}`},
	{MediaTypeOCIManifest, `{"schemaVersion":1}`},
	{MediaTypeOCIManifest, `null`},
	{"", `[]`},
	{"application/json", `{}`},
	{"", ``},
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range manifestSeeds {
		f.Add(s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, err := ParseManifest(contentType, body)
		if err != nil {
			return
		}
		switch m.MediaType {
		case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		default:
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		if contentType != "" && m.MediaType != contentType {
			t.Fatalf("Content-Type %q, but the manifest was taken as %q", contentType, m.MediaType)
		}
		if !bytes.Equal(m.Content, body) {
			t.Fatalf("Content is not the body")
		}
		refs := append(append([]digest.Digest(nil), m.Blobs...), m.Manifests...)
		if m.Subject != "" {
			refs = append(refs, m.Subject)
		}
		for _, d := range refs {
			if err := d.Validate(); err != nil {
				t.Fatalf("accepted a manifest referencing %q: %v", d, err)
			}
			// The blob store's path for it must be computable.
			if len(d.Encoded()) < 2 {
				t.Fatalf("digest %q has a short encoding", d)
			}
		}
		if IsIndex(m.MediaType) && len(m.Blobs) != 0 {
			t.Fatalf("index with blobs %v", m.Blobs)
		}
		if !IsIndex(m.MediaType) && (len(m.Manifests) != 0 || len(m.Blobs) == 0) {
			t.Fatalf("image manifest with manifests %v and blobs %v: want no manifests and at least a config", m.Manifests, m.Blobs)
		}
	})
}
