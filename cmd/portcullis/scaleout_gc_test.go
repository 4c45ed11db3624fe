package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
)

// gcGrace is the cluster's gc.gracePeriod and gc.uploadMaxAge: long
// enough that no push of the load outlives it, short enough to wait out.
const gcGrace = "5s"

// testClusterGCUnderLoad makes garbage (images pushed by digest only, one
// with a signature referrer, an image whose tag was deleted, an abandoned
// upload), waits past the grace period, then runs `portcullis gc
// --dry-run` and `portcullis gc` as a separate process while clients push
// new tagged images and pull through both replicas. The real run deletes
// what the dry run listed, the garbage among it; every image that was
// whole before and every push acknowledged during the load is whole after.
func testClusterGCUnderLoad(t *testing.T, c *cluster) {
	grace, _ := time.ParseDuration(gcGrace)
	push := func(img v1.Image, ref string) v1.Hash {
		t.Helper()
		if err := crane.Push(img, ref); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	newImage := func() v1.Image {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	referrer := func(subject v1.Image) v1.Image {
		d, _ := subject.Digest()
		mt, _ := subject.MediaType()
		sz, _ := subject.Size()
		sig := mutate.MediaType(mutate.ConfigMediaType(newImage(), "application/vnd.example.sig"), types.OCIManifestSchema1)
		return mutate.Subject(sig, v1.Descriptor{MediaType: mt, Digest: d, Size: sz}).(v1.Image)
	}
	repo := c.Addr + "/staging/gc"
	// Live: a tagged image and its referrer.
	live := newImage()
	liveD := push(live, repo+"/live:v1")
	liveSig := referrer(live)
	liveSigD := push(liveSig, repo+"/live@"+mustDigest(t, liveSig).String())
	// Garbage: images pushed by digest (the first with a referrer) and an
	// image whose tag is deleted.
	var garbage []string
	for i := range 3 {
		img := newImage()
		d := push(img, fmt.Sprintf("%s/dead%d@%s", repo, i, mustDigest(t, img)))
		garbage = append(garbage, fmt.Sprintf("staging/gc/dead%d@%s", i, d))
		if i == 0 {
			sig := referrer(img)
			sd := push(sig, fmt.Sprintf("%s/dead0@%s", repo, mustDigest(t, sig)))
			garbage = append(garbage, "staging/gc/dead0@"+sd.String())
		}
	}
	untagged := push(newImage(), repo+"/untagged:v1")
	if err := crane.Delete(repo + "/untagged:v1"); err != nil {
		t.Fatalf("delete tag: %v", err)
	}
	garbage = append(garbage, "staging/gc/untagged@"+untagged.String())
	// An abandoned upload with bytes in the bucket.
	uploadID := registrytest.AbandonUpload(t, c.Addr, "staging/gc/abandoned")
	// Every tagged image in the registry that is whole now must be whole
	// after the collection (earlier subtests left theirs, some of them
	// garbage by now).
	wholeBefore := wholeTagged(t, c.Addr)
	time.Sleep(grace + 500*time.Millisecond)

	// The load: new tagged images and pulls, through both replicas.
	ctx, stopLoad := context.WithCancel(t.Context())
	var (
		mu      sync.Mutex
		acked   []string
		started = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	errs := make(chan error, 3)
	for cl := range 3 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ref := fmt.Sprintf("%s/staging/gcload/c%d:v%d", c.Addr, cl, i)
				if err := crane.Push(newImage(), ref, crane.WithContext(ctx)); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("push %s during gc: %w", ref, err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, ref)
				mu.Unlock()
				once.Do(func() { close(started) })
				img, err := crane.Pull(repo+"/live:v1", crane.WithContext(ctx))
				if err == nil {
					err = validate.Image(img)
				}
				if err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("pull during gc: %w", err)
					return
				}
			}
		})
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("no push of the load finished within a minute")
	}
	dry := gcCLI(t, c, "--dry-run")
	got := gcCLI(t, c)
	stopLoad()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	registrytest.SameCollection(t, &dry, &got)
	for _, g := range garbage {
		if !slices.Contains(got.Manifests, g) {
			t.Errorf("garbage %s was not collected", g)
		}
		if _, err := crane.Head(c.Addr + "/" + g); err == nil {
			t.Errorf("garbage %s is still served", g)
		}
	}
	if !slices.Contains(got.Uploads, uploadID) {
		t.Errorf("the abandoned upload %s was not collected (collected %q)", uploadID, got.Uploads)
	}
	for _, m := range got.Manifests {
		if strings.HasPrefix(m, "staging/gcload/") || m == "staging/gc/live@"+liveD.String() || m == "staging/gc/live@"+liveSigD.String() {
			t.Errorf("gc deleted %s, which is live", m)
		}
	}
	// Nothing an image needs is gone.
	mu.Lock()
	refs := append(slices.Clone(acked), wholeBefore...)
	mu.Unlock()
	for _, ref := range append(refs, repo+"/live@"+liveSigD.String()) {
		if err := wholeImage(ref); err != nil {
			t.Errorf("after gc: %v", err)
		}
	}
	idx, err := remote.Referrers(mustRef(t, repo+"/live@"+liveD.String()).Context().Digest(liveD.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, err := idx.IndexManifest(); err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != liveSigD {
		t.Errorf("referrers of the live image after gc: %+v, %v; want its signature", im, err)
	}
	t.Logf("gc under load: %d pushes acknowledged during it; it deleted %d tags, %d manifests, %d links, %d blobs (%d bytes), %d uploads in %s",
		len(acked), len(got.Tags), len(got.Manifests), len(got.Links), len(got.Blobs), got.Bytes, len(got.Uploads), got.Duration)
}

// gcCLI runs `portcullis gc --json` against the cluster's configuration as
// a process of its own, as an operator's cron job would.
func gcCLI(t *testing.T, c *cluster, args ...string) registry.GCReport {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := runTool(t, "", []string{mainEnv + "=1"}, exe, append([]string{"gc", "--config", c.config, "--data", t.TempDir(), "--json"}, args...)...)
	var rep registry.GCReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gc report: %v\n%s", err, out)
	}
	return rep
}

// wholeTagged lists every tag of every repository at addr whose image or
// index reads back whole (every blob present and matching its digest).
func wholeTagged(t *testing.T, addr string) []string {
	t.Helper()
	repos, err := crane.Catalog(addr)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range repos {
		tags, err := crane.ListTags(addr + "/" + r)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if ref := addr + "/" + r + ":" + tag; wholeImage(ref) == nil {
				refs = append(refs, ref)
			}
		}
	}
	return refs
}

// wholeImage reads the image or index at ref and every blob it names.
func wholeImage(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	desc, err := remote.Get(r)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		var idx v1.ImageIndex
		if idx, err = desc.ImageIndex(); err == nil {
			err = validate.Index(idx)
		}
	} else {
		var img v1.Image
		if img, err = desc.Image(); err == nil {
			err = validate.Image(img)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	return nil
}
