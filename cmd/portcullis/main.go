// Command portcullis is a supply-chain gate: an OCI registry whose
// production namespaces are written only through policy.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
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
  keys      export the server's keys, and import them into a replica
  version   print the version
`

// version is set with -ldflags "-X main.version=..." (else the build
// information's module version).
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
		return exitFailed
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "verify":
		return verifyCmd(ctx, args[1:], stdout, stderr)
	case "promote":
		return promoteCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		return auditCmd(ctx, args[1:], stdout, stderr)
	case "scan":
		return scanCmd(ctx, args[1:], stdout, stderr)
	case "db":
		return dbCmd(ctx, args[1:], stdout, stderr)
	case "policy":
		return policyCmd(ctx, args[1:], stdout, stderr)
	case "robot":
		return robotCmd(ctx, args[1:], stdout, stderr)
	case "quota":
		return quotaCmd(ctx, args[1:], stdout, stderr)
	case "gc":
		return gcCmd(ctx, args[1:], stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], stdout, stderr)
	case "version":
		c := newCommand("version", "usage: portcullis version\n\nPrints the module version and the commit it was built from.\n", stdout, stderr)
		if _, code, ok := c.parse(args[1:], 0, 0); !ok {
			return code
		}
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "portcullis: unknown command %q (see portcullis -h)\n", args[0])
		return exitFailed
	}
}

// versionString is the module version and the commit of the build, from
// the build information Go records (go build with VCS stamping, as make
// build does), or what -ldflags "-X main.version=..." set.
func versionString() string {
	v, rev, dirty := version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if mv := bi.Main.Version; v == "dev" && mv != "" && mv != "(devel)" {
			v = mv
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "portcullis " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " commit " + rev
		if dirty {
			out += " (modified)"
		}
	}
	return out
}
