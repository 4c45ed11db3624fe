// Command portcullis is a supply-chain gate: an OCI registry whose
// production namespaces are written only through policy.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: portcullis <command> [flags]

commands:
  serve     run the registry (see 'portcullis serve -h')
  scan      scan an image for vulnerabilities with the offline database
  db        import the vulnerability database, or show its status
  verify    print and verify the signatures and attestations of an image
  promote   promote an image to a protected namespace through the gate
  audit     query, verify, export and prove the decision history
  policy    test and evaluate Rego policies (see 'portcullis policy help')
  robot     create, list and revoke robot accounts (CI credentials)
  quota     print the storage each namespace uses, and its quota
  gc        delete unreferenced manifests and blobs (--dry-run lists them)
  version   print the version
`

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "verify":
		return verifyCmd(ctx, args[1:], stdout, stderr)
	case "promote":
		return promoteCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		return auditCmd(ctx, args[1:], stdout, stderr)
	case "scan":
		return scanCmd(ctx, args[1:], stdout, stderr)
	case "db":
		err = dbCmd(ctx, args[1:], stdout, stderr)
	case "policy":
		return policyCmd(ctx, args[1:], stdout, stderr)
	case "robot":
		return robotCmd(ctx, args[1:], stdout, stderr)
	case "quota":
		return quotaCmd(ctx, args[1:], stdout, stderr)
	case "gc":
		err = gcCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "portcullis", version)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "portcullis: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
