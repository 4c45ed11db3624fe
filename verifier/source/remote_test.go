package source_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/verifier/source"
	"github.com/portcullis-dev/portcullis/verifier/source/sourcetest"
)

func TestRemote(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) (source.Source, string) {
		_, host := registrytest.New(t)
		return source.NewRemote(host), host
	})
}

func TestLocal(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) (source.Source, string) {
		reg, host := registrytest.New(t)
		return reg.Store().Source(), host
	})
}
