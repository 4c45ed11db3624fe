package main

// Real registry clients (the Docker engine, crane, skopeo, oras, helm)
// against a real `portcullis serve`. Each test asserts what the client
// and the registry agree on: digests, bytes, tags, referrers.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	mediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	titleAnnotation      = "org.opencontainers.image.title"
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifestJSON is an OCI image manifest, an OCI index or a Docker v2
// manifest: the fields the tests look at.
type manifestJSON struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *descriptor       `json:"config,omitempty"`
	Layers        []descriptor      `json:"layers,omitempty"`
	Manifests     []descriptor      `json:"manifests,omitempty"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// tarOf returns a tar archive of files (path -> content), with entries for
// their parent directories, in a stable order.
func tarOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, name := range names {
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/") + "/"
			if dirs[dir] {
				continue
			}
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime}); err != nil {
				t.Fatal(err)
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(files[name])), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// filesOfTar returns the regular files of a tar archive.
func filesOfTar(t testing.TB, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s from tar: %v", hdr.Name, err)
		}
		files[strings.TrimPrefix(hdr.Name, "./")] = b
	}
}

// testImage is a one-layer OCI image built in memory.
type testImage struct {
	Layer    []byte // gzipped tar
	Config   []byte
	Manifest []byte
	Digest   string // of Manifest
}

func newTestImage(t testing.TB, files map[string][]byte) *testImage {
	t.Helper()
	layerTar := tarOf(t, files)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layerTar); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	img := &testImage{Layer: gz.Bytes()}
	var err error
	img.Config, err = json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(layerTar)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img.Manifest, err = json.Marshal(manifestJSON{
		SchemaVersion: 2,
		MediaType:     mediaTypeOCIManifest,
		Config:        &descriptor{MediaType: mediaTypeOCIConfig, Digest: sha256Digest(img.Config), Size: int64(len(img.Config))},
		Layers:        []descriptor{{MediaType: mediaTypeOCILayer, Digest: sha256Digest(img.Layer), Size: int64(len(img.Layer))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img.Digest = sha256Digest(img.Manifest)
	return img
}

// push uploads the image's blobs and manifest to repo:tag over HTTP.
func (img *testImage) push(t testing.TB, s *server, repo, tag string) {
	t.Helper()
	c := newClient(t)
	pushBlob(t, c, s, repo, img.Config)
	pushBlob(t, c, s, repo, img.Layer)
	putManifest(t, c, s, repo, tag, mediaTypeOCIManifest, img.Manifest)
}

// writeLayout writes the image as an OCI image layout in dir, tagged tag.
func (img *testImage) writeLayout(t testing.TB, dir, tag string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{img.Layer, img.Config, img.Manifest} {
		writeFile(t, filepath.Join(blobs, strings.TrimPrefix(sha256Digest(b), "sha256:")), b)
	}
	index, err := json.Marshal(manifestJSON{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests: []descriptor{{
			MediaType:   mediaTypeOCIManifest,
			Digest:      img.Digest,
			Size:        int64(len(img.Manifest)),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "index.json"), index)
	writeFile(t, filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unmarshal(t testing.TB, what string, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
}

// getManifest fetches a manifest and checks it hashes to the digest the
// registry reports.
func getManifest(t testing.TB, s *server, repo, ref string) ([]byte, manifestJSON) {
	t.Helper()
	resp := mustDo(t, newClient(t), http.StatusOK, http.MethodGet, s.URL("/v2/"+repo+"/manifests/"+ref), manifestAccept, nil)
	if d := resp.Header.Get("Docker-Content-Digest"); d != sha256Digest(resp.Body) {
		t.Fatalf("manifest %s:%s: Docker-Content-Digest %s, content is %s", repo, ref, d, sha256Digest(resp.Body))
	}
	var m manifestJSON
	unmarshal(t, "manifest "+repo+":"+ref, resp.Body, &m)
	return resp.Body, m
}

// getBlob fetches a blob and checks it hashes to its digest.
func getBlob(t testing.TB, s *server, repo, d string) []byte {
	t.Helper()
	resp := mustDo(t, newClient(t), http.StatusOK, http.MethodGet, s.URL("/v2/"+repo+"/blobs/"+d), nil, nil)
	if got := sha256Digest(resp.Body); got != d {
		t.Fatalf("blob %s in %s: content is %s", d, repo, got)
	}
	return resp.Body
}

// listTags returns the tags of repo.
func listTags(t testing.TB, s *server, repo string) []string {
	t.Helper()
	resp := mustDo(t, newClient(t), http.StatusOK, http.MethodGet, s.URL("/v2/"+repo+"/tags/list"), nil, nil)
	var l struct {
		Tags []string `json:"tags"`
	}
	unmarshal(t, "tags of "+repo, resp.Body, &l)
	return l.Tags
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// digestAfter returns the first digest in out that follows marker.
func digestAfter(t testing.TB, out, marker string) string {
	t.Helper()
	i := strings.Index(out, marker)
	if i < 0 {
		t.Fatalf("no %q in output:\n%s", marker, out)
	}
	d := digestRE.FindString(out[i:])
	if d == "" {
		t.Fatalf("no digest after %q in output:\n%s", marker, out)
	}
	return d
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (%s), want %d bytes (%s)", what, len(got), sha256Digest(got), len(want), sha256Digest(want))
	}
}

func equalStrings(t testing.TB, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// requireDocker returns the docker CLI's path once the engine answers.
func requireDocker(t testing.TB) string {
	t.Helper()
	docker := requireTool(t, "docker")
	if _, _, err := tryTool(t, "", nil, docker, "info", "--format", "{{.ServerVersion}}"); err != nil {
		unavailable(t, "the Docker engine is not reachable: %v", err)
	}
	return docker
}

// TestDockerClient pushes an image from the Docker engine, removes it,
// pulls it back and reads the manifest with `docker manifest inspect`.
func TestDockerClient(t *testing.T) {
	docker := requireDocker(t)
	s := startServer(t, t.TempDir())
	dir := t.TempDir()

	hello := []byte("hello from portcullis " + uniqueName("") + "\n")
	rootfs := filepath.Join(dir, "rootfs.tar")
	writeFile(t, rootfs, tarOf(t, map[string][]byte{
		"hello.txt":           hello,
		"etc/portcullis-test": randomBytes(1024),
	}))
	local := uniqueName("portcullis-test/dockerapp-") + ":1"
	const repo = "staging/dockerapp"
	ref := s.Addr + "/" + repo + ":1"
	var container string
	t.Cleanup(func() {
		if container != "" {
			_, _, _ = tryTool(t, "", nil, docker, "rm", "-f", container)
		}
		_, _, _ = tryTool(t, "", nil, docker, "rmi", "-f", local, ref)
	})

	out, _ := runTool(t, "", nil, docker, "import", rootfs, local)
	imageID := strings.TrimSpace(out)
	runTool(t, "", nil, docker, "tag", local, ref)
	out, _ = runTool(t, "", nil, docker, "push", ref)
	pushed := digestAfter(t, out, "digest:")
	equalStrings(t, "registry's digest of the pushed image", headManifest(t, s, repo, "1"), pushed)
	_, m := getManifest(t, s, repo, "1")
	if m.Config == nil || m.Config.Digest != imageID {
		t.Fatalf("pushed manifest's config is %+v, want the image ID %s", m.Config, imageID)
	}

	runTool(t, "", nil, docker, "rmi", local, ref)
	if _, _, err := tryTool(t, "", nil, docker, "image", "inspect", ref); err == nil {
		t.Fatalf("%s is still in the engine after docker rmi", ref)
	}
	runTool(t, "", nil, docker, "pull", ref)
	out, _ = runTool(t, "", nil, docker, "image", "inspect", "--format", "{{.Id}} {{range .RepoDigests}}{{.}} {{end}}", ref)
	fields := strings.Fields(out)
	equalStrings(t, "pulled image ID", fields[0], imageID)
	if want := s.Addr + "/" + repo + "@" + pushed; !slices.Contains(fields[1:], want) {
		t.Fatalf("pulled image's RepoDigests %q lack %s", fields[1:], want)
	}
	out, _ = runTool(t, "", nil, docker, "create", ref, "/nonexistent")
	container = strings.TrimSpace(out)
	out, _ = runTool(t, "", nil, docker, "cp", container+":/hello.txt", "-")
	equalBytes(t, "hello.txt in the pulled image", filesOfTar(t, strings.NewReader(out))["hello.txt"], hello)

	out, _ = runTool(t, "", nil, docker, "manifest", "inspect", "--insecure", "--verbose", ref)
	var inspected struct {
		Descriptor descriptor
		Raw        string
	}
	unmarshal(t, "docker manifest inspect", []byte(out), &inspected)
	equalStrings(t, "docker manifest inspect digest", inspected.Descriptor.Digest, pushed)
	raw, err := base64.StdEncoding.DecodeString(inspected.Raw)
	if err != nil {
		t.Fatalf("docker manifest inspect Raw: %v", err)
	}
	equalStrings(t, "digest of the manifest docker read", sha256Digest(raw), pushed)
}

// TestCraneClient runs crane's push, pull, export, copy, tag, ls, digest,
// catalog and delete.
func TestCraneClient(t *testing.T) {
	crane := requireTool(t, "crane")
	s := startServer(t, t.TempDir())
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, _ := runTool(t, dir, nil, crane, args...)
		return strings.TrimSpace(out)
	}

	payload := randomBytes(256 << 10)
	writeFile(t, filepath.Join(dir, "layer.tar"), tarOf(t, map[string][]byte{"data/random.bin": payload}))
	src, dst := s.Addr+"/crane/src", s.Addr+"/crane/dst"

	out := run("append", "-f", "layer.tar", "-t", src+":v1")
	_, d, ok := strings.Cut(out, "@")
	if !ok || !digestRE.MatchString(d) {
		t.Fatalf("crane append printed %q, want <ref>@<digest>", out)
	}
	equalStrings(t, "crane digest", run("digest", src+":v1"), d)
	equalStrings(t, "registry's digest", headManifest(t, s, "crane/src", "v1"), d)

	// pull: an OCI layout whose every blob hashes to its name.
	run("pull", "--format=oci", src+":v1", "layout")
	var index manifestJSON
	unmarshal(t, "pulled index.json", readFile(t, filepath.Join(dir, "layout", "index.json")), &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != d {
		t.Fatalf("pulled layout's index lists %+v, want one manifest %s", index.Manifests, d)
	}
	layoutBlob := func(desc descriptor) []byte {
		t.Helper()
		b := readFile(t, filepath.Join(dir, "layout", "blobs", "sha256", strings.TrimPrefix(desc.Digest, "sha256:")))
		if sha256Digest(b) != desc.Digest || int64(len(b)) != desc.Size {
			t.Fatalf("pulled blob %s: %d bytes hashing to %s, want %d bytes", desc.Digest, len(b), sha256Digest(b), desc.Size)
		}
		return b
	}
	var m manifestJSON
	unmarshal(t, "pulled manifest", layoutBlob(index.Manifests[0]), &m)
	layoutBlob(*m.Config)
	for _, l := range m.Layers {
		layoutBlob(l)
	}

	// export: the image's filesystem holds the file pushed.
	run("export", src+":v1", "fs.tar")
	f, err := os.Open(filepath.Join(dir, "fs.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	equalBytes(t, "data/random.bin exported", filesOfTar(t, f)["data/random.bin"], payload)

	// copy between repositories, by tag and by digest: the digest is kept.
	run("copy", src+":v1", dst+":v1")
	equalStrings(t, "digest after copy by tag", run("digest", dst+":v1"), d)
	run("copy", src+"@"+d, dst+":bydigest")
	equalStrings(t, "digest after copy by digest", headManifest(t, s, "crane/dst", "bydigest"), d)

	run("tag", src+":v1", "v2")
	equalStrings(t, "digest of the new tag", run("digest", src+":v2"), d)
	equalStrings(t, "crane ls src", run("ls", src), "v1\nv2")
	equalStrings(t, "crane ls dst", run("ls", dst), "bydigest\nv1")
	catalog := strings.Fields(run("catalog", s.Addr))
	for _, repo := range []string{"crane/src", "crane/dst"} {
		if !slices.Contains(catalog, repo) {
			t.Fatalf("crane catalog %q lacks %s", catalog, repo)
		}
	}

	// delete by digest removes the manifest and the tags on it, in that
	// repository only.
	run("delete", dst+"@"+d)
	if _, _, err := tryTool(t, dir, nil, crane, "digest", dst+":v1"); err == nil || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Fatalf("crane digest of a deleted manifest: %v, want MANIFEST_UNKNOWN", err)
	}
	equalStrings(t, "crane ls dst after delete", run("ls", dst), "")
	equalStrings(t, "digest of src after deleting dst", run("digest", src+":v1"), d)
}

// TestSkopeoClient copies an OCI layout in with skopeo, between
// repositories, and out to a directory, keeping the digest.
func TestSkopeoClient(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	s := startServer(t, t.TempDir())
	dir := t.TempDir()
	// Accept any image, whatever the machine's /etc/containers/policy.json says.
	writeFile(t, filepath.Join(dir, "policy.json"), []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
	copyImage := func(src, dst string) {
		t.Helper()
		runTool(t, dir, nil, skopeo, "--policy", "policy.json", "copy", "--preserve-digests",
			"--src-tls-verify=false", "--dest-tls-verify=false", src, dst)
	}

	payload := randomBytes(128 << 10)
	img := newTestImage(t, map[string][]byte{"skopeo/payload.bin": payload})
	img.writeLayout(t, filepath.Join(dir, "layout"), "v1")

	copyImage("oci:layout:v1", "docker://"+s.Addr+"/skopeo/app:v1")
	equalStrings(t, "registry's digest after copy in", headManifest(t, s, "skopeo/app", "v1"), img.Digest)
	body, _ := getManifest(t, s, "skopeo/app", "v1")
	equalBytes(t, "manifest in the registry", body, img.Manifest)
	equalBytes(t, "layer in the registry", getBlob(t, s, "skopeo/app", sha256Digest(img.Layer)), img.Layer)

	copyImage("docker://"+s.Addr+"/skopeo/app:v1", "docker://"+s.Addr+"/skopeo/copy:v1")
	equalStrings(t, "registry's digest after copy between repositories", headManifest(t, s, "skopeo/copy", "v1"), img.Digest)

	copyImage("docker://"+s.Addr+"/skopeo/copy:v1", "dir:out")
	out := filepath.Join(dir, "out")
	equalBytes(t, "manifest copied out", readFile(t, filepath.Join(out, "manifest.json")), img.Manifest)
	for name, want := range map[string][]byte{"config": img.Config, "layer": img.Layer} {
		got := readFile(t, filepath.Join(out, strings.TrimPrefix(sha256Digest(want), "sha256:")))
		equalBytes(t, name+" copied out", got, want)
	}
}

// TestORASClient pushes and pulls an artifact with oras and attaches a
// referrer that oras discover finds.
func TestORASClient(t *testing.T) {
	oras := requireTool(t, "oras")
	s := startServer(t, t.TempDir())
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, _ := runTool(t, dir, nil, oras, append(args, "--plain-http")...)
		return []byte(out)
	}
	type pushResult struct {
		Digest       string `json:"digest"`
		ArtifactType string `json:"artifactType"`
	}

	// push: an artifact with a custom type and one file.
	const artifactType = "application/vnd.portcullis.test.artifact.v1"
	payload := randomBytes(300 << 10)
	writeFile(t, filepath.Join(dir, "payload.bin"), payload)
	artifact := s.Addr + "/oras/artifact:v1"
	var pushed pushResult
	unmarshal(t, "oras push", run("push", "--format", "json", "--artifact-type", artifactType, artifact, "payload.bin:application/octet-stream"), &pushed)
	equalStrings(t, "oras push artifactType", pushed.ArtifactType, artifactType)
	equalStrings(t, "registry's digest of the artifact", headManifest(t, s, "oras/artifact", "v1"), pushed.Digest)
	_, m := getManifest(t, s, "oras/artifact", "v1")
	equalStrings(t, "stored artifactType", m.ArtifactType, artifactType)
	if len(m.Layers) != 1 || m.Layers[0].Digest != sha256Digest(payload) || m.Layers[0].Annotations[titleAnnotation] != "payload.bin" {
		t.Fatalf("artifact layers %+v, want payload.bin as %s", m.Layers, sha256Digest(payload))
	}
	run("pull", "-o", "pulled", artifact)
	equalBytes(t, "pulled payload.bin", readFile(t, filepath.Join(dir, "pulled", "payload.bin")), payload)

	// attach: a referrer of an image, found by discover and the referrers API.
	img := newTestImage(t, map[string][]byte{"app/bin": randomBytes(4096)})
	img.push(t, s, "oras/app", "v1")
	const sbomType = "application/vnd.portcullis.test.sbom.v1"
	sbom := []byte(`{"sbom":"` + uniqueName("") + `"}`)
	writeFile(t, filepath.Join(dir, "sbom.json"), sbom)
	var attached pushResult
	unmarshal(t, "oras attach", run("attach", "--format", "json", "--artifact-type", sbomType, s.Addr+"/oras/app:v1", "sbom.json:application/json"), &attached)
	equalStrings(t, "oras attach artifactType", attached.ArtifactType, sbomType)
	_, ref := getManifest(t, s, "oras/app", attached.Digest)
	if ref.Subject == nil || ref.Subject.Digest != img.Digest {
		t.Fatalf("attached manifest's subject is %+v, want %s", ref.Subject, img.Digest)
	}

	var tree struct {
		Digest    string       `json:"digest"`
		Referrers []descriptor `json:"referrers"`
	}
	unmarshal(t, "oras discover", run("discover", "--format", "json", s.Addr+"/oras/app:v1"), &tree)
	equalStrings(t, "oras discover subject", tree.Digest, img.Digest)
	if len(tree.Referrers) != 1 || tree.Referrers[0].Digest != attached.Digest || tree.Referrers[0].ArtifactType != sbomType {
		t.Fatalf("oras discover found %+v, want %s of type %s", tree.Referrers, attached.Digest, sbomType)
	}
	unmarshal(t, "oras discover --artifact-type", run("discover", "--format", "json", "--artifact-type", "application/vnd.portcullis.other", s.Addr+"/oras/app:v1"), &tree)
	if len(tree.Referrers) != 0 {
		t.Fatalf("oras discover filtered by another artifact type found %+v", tree.Referrers)
	}

	run("pull", "-o", "pulled-sbom", s.Addr+"/oras/app@"+attached.Digest)
	equalBytes(t, "pulled sbom.json", readFile(t, filepath.Join(dir, "pulled-sbom", "sbom.json")), sbom)
}

// TestHelmClient pushes a packaged chart with helm and pulls it back.
func TestHelmClient(t *testing.T) {
	helm := requireTool(t, "helm")
	s := startServer(t, t.TempDir())
	dir := t.TempDir()
	// Keep helm's cache, configuration and registry logins inside the test.
	env := []string{
		"HELM_CACHE_HOME=" + filepath.Join(dir, "helm", "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(dir, "helm", "config"),
		"HELM_DATA_HOME=" + filepath.Join(dir, "helm", "data"),
	}
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr := runTool(t, dir, env, helm, args...)
		return stdout + stderr
	}

	chart := uniqueName("portcullis-test-")
	const version = "1.2.3"
	run("create", chart)
	run("package", chart, "--version", version, "-d", "pkg")
	tgz := readFile(t, filepath.Join(dir, "pkg", chart+"-"+version+".tgz"))

	out := run("push", filepath.Join("pkg", chart+"-"+version+".tgz"), "oci://"+s.Addr+"/charts", "--plain-http")
	pushed := digestAfter(t, out, "Digest:")
	repo := "charts/" + chart
	equalStrings(t, "registry's digest of the chart", headManifest(t, s, repo, version), pushed)
	_, m := getManifest(t, s, repo, version)
	if m.Config == nil || m.Config.MediaType != "application/vnd.cncf.helm.config.v1+json" ||
		len(m.Layers) != 1 || m.Layers[0].Digest != sha256Digest(tgz) {
		t.Fatalf("chart manifest %+v, want a helm config and the package %s as its layer", m, sha256Digest(tgz))
	}
	if tags := listTags(t, s, repo); !slices.Equal(tags, []string{version}) {
		t.Fatalf("tags of %s: %q, want [%s]", repo, tags, version)
	}

	if err := os.Mkdir(filepath.Join(dir, "pulled"), 0o755); err != nil {
		t.Fatal(err)
	}
	out = run("pull", "oci://"+s.Addr+"/"+repo, "--version", version, "--plain-http", "-d", "pulled")
	equalStrings(t, "digest helm pulled", digestAfter(t, out, "Digest:"), pushed)
	equalBytes(t, "pulled chart", readFile(t, filepath.Join(dir, "pulled", chart+"-"+version+".tgz")), tgz)
}
