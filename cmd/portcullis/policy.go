package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

const policyUsage = `usage: portcullis policy <command> [flags]

commands:
  test DIR|oci://REF... [--coverage] [--library] [-v] [--run REGEX] [--config FILE]
        run the Rego tests (test_* rules) under DIR, or in the bundle
        pushed at REF, with OPA's tester;
        exit 0 if all pass, 1 if one fails, 2 on error
  eval --policy DIR|BUNDLE.tar.gz|oci://REF --input FILE [--explain] [--json] [--no-library] [--config FILE]
        evaluate a policy input (docs/policy-input.md) and print the
        decision; exit 0 allow, 1 deny, 2 error

'portcullis policy test -h' and 'portcullis policy eval -h' list the flags.
`

// policyCmd runs "portcullis policy ..." and returns the exit code.
func policyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	c := newCommand("policy "+sub, policyUsage, stdout, stderr)
	var (
		code int
		err  error
	)
	switch sub {
	case "test":
		code, err = policyTest(ctx, c, args)
	case "eval":
		code, err = policyEval(ctx, c, args)
	case "-h", "--help", "help":
		c.name = "policy"
		c.printUsage(stdout)
		return exitOK
	case "":
		c.name = "policy"
		return c.usageError("want a command: test or eval")
	default:
		c.name = "policy"
		return c.usageError("unknown command %q", sub)
	}
	if err != nil {
		// One line, whatever the error holds.
		return c.fail(errors.New(strings.Join(strings.Fields(err.Error()), " ")))
	}
	return code
}

func policyTest(ctx context.Context, c *command, args []string) (int, error) {
	fs, stdout := c.fs, c.stdout
	var o policy.TestOptions
	fs.BoolVar(&o.Coverage, "coverage", false, "report the lines the tests cover")
	fs.BoolVar(&o.Library, "library", false, "add the built-in library's policies (for tests of a bundle that configures it)")
	fs.BoolVar(&o.Verbose, "v", false, "list every test")
	fs.StringVar(&o.Run, "run", "", "run only tests matching this regular expression")
	configPath := fs.String("config", "", "portcullis.yaml whose webhook.registries give the settings and credentials for oci:// bundles (default: the docker config's)")
	dirs, code, ok := c.parse(args, 1, -1)
	if !ok {
		return code, nil
	}
	o.Paths = dirs
	images, err := cliBundleImages(*configPath, false)
	if err != nil {
		return 2, err
	}
	o.Images = images
	sum, err := policy.RunTests(ctx, o, stdout)
	if err != nil {
		return 2, err
	}
	if sum.Passed+sum.Failed == 0 {
		return 2, fmt.Errorf("no tests found under %s", strings.Join(dirs, " "))
	}
	if !sum.OK() {
		return 1, nil
	}
	return 0, nil
}

func policyEval(ctx context.Context, c *command, args []string) (int, error) {
	fs, stdout := c.fs, c.stdout
	policyDir := fs.String("policy", "", "policy bundle: a directory, a .tar.gz bundle or oci://REF (empty: the built-in library alone)")
	configPath := fs.String("config", "", "portcullis.yaml whose webhook.registries give the settings and credentials for an oci:// bundle (default: the docker config's)")
	inputFile := fs.String("input", "", "policy input, JSON (- for standard input)")
	explain := fs.Bool("explain", false, "show which deny and warn rules fired")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	noLibrary := fs.Bool("no-library", false, "do not add the built-in library to the bundle")
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code, nil
	}
	if *inputFile == "" {
		return c.usageError("--input is required"), nil
	}
	raw, err := readPolicyInput(*inputFile)
	if err != nil {
		return 2, err
	}
	images, err := cliBundleImages(*configPath, false)
	if err != nil {
		return 2, err
	}
	e, err := loadPolicyEngine(ctx, *policyDir, images, !*noLibrary)
	if err != nil {
		return 2, err
	}
	var x policy.Explanation
	var opts []policy.EvalOption
	if *explain {
		opts = append(opts, policy.Explain(&x))
	}
	d, evalErr := e.EvalJSON(ctx, raw, opts...)
	if *asJSON {
		out := struct {
			contract.Verdict
			Explanation *policy.Explanation `json:"explanation,omitempty"`
		}{Verdict: d}
		if *explain {
			out.Explanation = &x
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return 2, err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else if evalErr == nil {
		printPolicyDecision(stdout, d, *explain, x)
	}
	switch {
	case evalErr != nil:
		return 2, evalErr
	case d.Allow:
		return 0, nil
	default:
		return 1, nil
	}
}

func readPolicyInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return b, nil
}

// loadPolicyEngine compiles the bundle at location (with the library) as a policy
// set would.
func loadPolicyEngine(ctx context.Context, location string, images policy.ImageSource, library bool) (*policy.Engine, error) {
	b := &policy.Bundle{Source: policy.LibrarySource}
	if location != "" {
		var err error
		if b, err = policy.Load(ctx, location, images); err != nil {
			return nil, err
		}
	}
	if library {
		lib, err := policy.Library()
		if err != nil {
			return nil, err
		}
		if b, err = policy.WithLibrary(lib, b); err != nil {
			return nil, err
		}
	}
	return policy.NewEngine(ctx, b)
}

func printPolicyDecision(w io.Writer, d contract.Verdict, explain bool, x policy.Explanation) {
	verdict := "DENY"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "%s (policy revision %s)\n", verdict, d.Revision)
	for _, m := range d.Deny {
		fmt.Fprintf(w, "  deny: %s\n", m.Msg)
	}
	for _, m := range d.Warn {
		fmt.Fprintf(w, "  warn: %s\n", m.Msg)
	}
	if explain {
		if len(x.Rules) == 0 {
			fmt.Fprintln(w, "rules fired: none")
		} else {
			fmt.Fprintln(w, "rules fired:")
		}
		for _, r := range x.Rules {
			fmt.Fprintf(w, "  %s (%s) x%d\n", r.Rule, r.Location, r.Times)
		}
	}
}
