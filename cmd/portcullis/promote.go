package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/portcullis-dev/portcullis/registry"
)

const promoteUsage = `usage: portcullis promote [flags] SOURCE TARGET

Promotes SOURCE (REGISTRY/staging/app:tag or @digest) to TARGET
(REGISTRY/prod/app:tag) through the gate, server-side: policy decides on
the source's evidence, then the image, its evidence and the tag are linked
into the target in one transaction. No blob bytes are copied.

Exit status: 0 promoted, 1 denied by policy, 2 could not be done.

flags:
`

func promoteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("promote", promoteUsage, stdout, stderr)
	insecure := c.fs.Bool("allow-insecure-registry", false, "reach the registry over plain HTTP (loopback registries always are)")
	output := c.fs.String("output", "text", "text or json")
	pos, code, ok := c.parse(args, 2, 2)
	if !ok {
		return code
	}
	fail := c.fail
	if *output != "text" && *output != "json" {
		return fail(fmt.Errorf("--output %q: want text or json", *output))
	}
	var opts []name.Option
	if *insecure {
		opts = append(opts, name.Insecure)
	}
	src, err := name.ParseReference(pos[0], opts...)
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	dst, err := name.ParseReference(pos[1], opts...)
	if err != nil {
		return fail(fmt.Errorf("target: %w", err))
	}
	if src.Context().RegistryStr() != dst.Context().RegistryStr() {
		return fail(fmt.Errorf("source and target must be in the same registry (%s, %s): use crane copy between registries", src.Context().RegistryStr(), dst.Context().RegistryStr()))
	}
	if _, ok := dst.(name.Digest); ok {
		return fail(errors.New("target: give a tag, not a digest"))
	}
	sep := ":"
	if _, ok := src.(name.Digest); ok {
		sep = "@"
	}
	body, _ := json.Marshal(registry.PromotionRequest{
		Source: src.Context().RepositoryStr() + sep + src.Identifier(),
		Target: dst.Context().RepositoryStr() + ":" + dst.Identifier(),
	})
	u := fmt.Sprintf("%s://%s%s", dst.Context().Scheme(), dst.Context().RegistryStr(), registry.PromotionsPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := credentialClient().Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(err)
	}
	var pr registry.PromotionResponse
	// Access control refuses with the OCI error JSON.
	var oci struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(raw, &oci) == nil && len(oci.Errors) > 0 {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			fmt.Fprintf(stderr, "portcullis promote: refused (access): %s\n", oci.Errors[0].Message)
			return exitFailed
		}
		return fail(fmt.Errorf("%s: %s: %s", resp.Status, oci.Errors[0].Code, oci.Errors[0].Message))
	}
	if (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden) || json.Unmarshal(raw, &pr) != nil {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		return fail(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(orString(e.Error, string(raw)))))
	}
	if *output == "json" {
		stdout.Write(raw)
	} else if pr.Allowed {
		fmt.Fprintf(stdout, "promoted %s to %s (policy set %s, revision %s, %d manifests linked)\n", pr.Source, pos[1], pr.PolicySet, pr.Revision, pr.Linked)
		for _, w := range pr.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		for _, l := range pr.LeftBehind {
			fmt.Fprintf(stdout, "left behind (not evidence): %s\n", l)
		}
	}
	switch {
	case pr.Allowed:
		return exitOK
	case pr.Refused == registry.RefusedPolicy:
		fmt.Fprintf(stderr, "portcullis promote: denied: %s\n", strings.Join(pr.Reasons, "; "))
		return exitDenied
	default: // not a policy decision: the promotion could not be done
		fmt.Fprintf(stderr, "portcullis promote: refused (%s): %s\n", orString(pr.Refused, "registry"), strings.Join(pr.Reasons, "; "))
		return exitFailed
	}
}

func orString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
