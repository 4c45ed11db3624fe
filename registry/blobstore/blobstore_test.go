package blobstore_test

import (
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/blobstore/blobstoretest"
)

func TestFilesystem(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Store {
		root := t.TempDir()
		return blobstore.New(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), blobstore.WithLocalRoot(root))
	})
}

func TestInmemory(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Store {
		return blobstore.New(inmemory.New())
	})
}
