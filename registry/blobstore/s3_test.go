package blobstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	s3 "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/portcullis-dev/portcullis/internal/s3test"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/blobstore/blobstoretest"
)

// TestS3 runs the blob store suite on distribution's S3 driver against a
// real S3 server: versitygw's POSIX gateway, which .ci/tools.sh installs.
// Each subtest gets its own key prefix in one bucket.
func TestS3(t *testing.T) {
	srv := s3test.Start(t, "blobs")
	var n atomic.Int64
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Store {
		d, err := s3.FromParameters(t.Context(), map[string]any{
			"bucket": "blobs", "region": "us-east-1", "accesskey": srv.AccessKey, "secretkey": srv.SecretKey,
			"regionendpoint": srv.Endpoint, "forcepathstyle": true, "secure": false,
			"rootdirectory": fmt.Sprintf("/t%d", n.Add(1)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return blobstore.New(d)
	})
}
