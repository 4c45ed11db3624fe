package blobstore_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	s3 "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/blobstore/blobstoretest"
)

// TestS3 runs the blob store suite on distribution's S3 driver against a
// real S3 server: versitygw's POSIX gateway, which .ci/tools.sh installs.
// Each subtest gets its own key prefix in one bucket.
func TestS3(t *testing.T) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("versitygw is not on PATH (.ci/tools.sh installs it)")
		}
		t.Skip("versitygw is not on PATH (.ci/tools.sh installs it)")
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--access", "test", "--secret", "test-secret", "--port", addr, "posix", root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var n atomic.Int64
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Store {
		d, err := s3.FromParameters(t.Context(), map[string]any{
			"bucket": "blobs", "region": "us-east-1", "accesskey": "test", "secretkey": "test-secret",
			"regionendpoint": endpoint, "forcepathstyle": true, "secure": false,
			"rootdirectory": fmt.Sprintf("/t%d", n.Add(1)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return blobstore.New(d)
	})
}
