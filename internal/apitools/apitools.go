// Package apitools runs the official API tools on the documents Courier
// writes, for tests: the AsyncAPI project's parser (@asyncapi/parser),
// Redocly's OpenAPI linter (@redocly/cli) and buf (@bufbuild/buf).
// scripts/services/apitools.sh installs them from npm (scripts/test runs
// it as root); COURIER_API_TOOLS names the directory it installed them in.
// A test that needs a tool that is not installed is skipped, and fails
// under CI (CI=true).
package apitools

import (
	"bytes"
	"context"
	_ "embed" // the validator script and the linter's configuration
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// Env names the directory the tools are installed in; Default is where
// scripts/services/apitools.sh installs them without it.
const (
	Env     = "COURIER_API_TOOLS"
	Default = "/opt/courier-api-tools"
)

// The npm packages, by the file that shows each is installed.
const (
	AsyncAPIParser = "@asyncapi/parser/package.json"
	Redocly        = "@redocly/cli/package.json"
	Buf            = "@bufbuild/buf/package.json"
)

// asyncAPIValidator validates AsyncAPI documents with @asyncapi/parser.
//
//go:embed asyncapi-validate.cjs
var asyncAPIValidator []byte

// redoclyConfig is the linter's configuration: Redocly's recommended rules
// less those that ask for what Courier does not describe.
//
//go:embed redocly.yaml
var redoclyConfig []byte

// Tools is an installation of the tools.
type Tools struct {
	dir string
}

// Require returns the installation that holds every package (AsyncAPIParser,
// Redocly, Buf), or skips t, failing it under CI, when one or node is
// missing.
func Require(t testing.TB, packages ...string) *Tools {
	t.Helper()
	dir := os.Getenv(Env)
	if dir == "" {
		dir = Default
	}
	_, nodeErr := exec.LookPath("node")
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p)); err != nil || nodeErr != nil {
			msg := fmt.Sprintf("%s is not installed in %s (or node is missing); install the tools with scripts/services/apitools.sh (or set %s)", p, dir, Env)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return &Tools{dir: dir}
}

// Bin returns the path of an installed command (node_modules/.bin/name).
func (tl *Tools) Bin(name string) string { return filepath.Join(tl.dir, "node_modules", ".bin", name) }

// Run runs a command with the tools' modules on NODE_PATH, their
// telemetry and update notices off, for up to two minutes.
func (tl *Tools) Run(t testing.TB, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+filepath.Join(tl.dir, "node_modules"),
		"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "SCARF_ANALYTICS=false", "BUF_CACHE_DIR="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// WriteFiles writes files (by name, which may hold directories) into a new
// directory and returns their paths, sorted.
func WriteFiles(t testing.TB, files map[string][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	paths := make([]string, 0, len(names))
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// Diagnostic is one finding of the AsyncAPI parser: severity 0 is an
// error, 1 a warning, 2 information, 3 a hint.
type Diagnostic struct {
	Severity int    `json:"severity"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Path     []any  `json:"path"`
}

// ValidateAsyncAPI validates each AsyncAPI document at paths with the
// AsyncAPI project's parser and returns its diagnostics by path.
func (tl *Tools) ValidateAsyncAPI(t testing.TB, paths ...string) map[string][]Diagnostic {
	t.Helper()
	script := filepath.Join(t.TempDir(), "asyncapi-validate.cjs")
	if err := os.WriteFile(script, asyncAPIValidator, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := tl.Run(t, "node", append([]string{script}, paths...)...)
	if err != nil {
		t.Fatalf("asyncapi parser: %v\n%s", err, stderr)
	}
	results := map[string][]Diagnostic{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var r struct {
			File        string       `json:"file"`
			Diagnostics []Diagnostic `json:"diagnostics"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("asyncapi parser output %q: %v", line, err)
		}
		results[r.File] = r.Diagnostics
	}
	if len(results) != len(paths) {
		t.Fatalf("the asyncapi parser reported on %d documents of %d:\n%s", len(results), len(paths), out)
	}
	return results
}

// Problem is one finding of Redocly's linter.
type Problem struct {
	RuleID   string `json:"ruleId"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Location []struct {
		Source  struct{ Ref string } `json:"source"`
		Pointer string               `json:"pointer"`
	} `json:"location"`
}

// LintOpenAPI lints the OpenAPI documents at paths with Redocly's
// recommended rules (less security and license) and returns what it
// finds.
func (tl *Tools) LintOpenAPI(t testing.TB, paths ...string) []Problem {
	t.Helper()
	config := filepath.Join(t.TempDir(), "redocly.yaml")
	if err := os.WriteFile(config, redoclyConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := tl.Run(t, tl.Bin("redocly"), append([]string{"lint", "--config", config, "--format", "json"}, paths...)...)
	// One report per document, one after the other.
	var problems []Problem
	reports := 0
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); reports++ {
		var report struct {
			Problems []Problem `json:"problems"`
		}
		if jerr := dec.Decode(&report); jerr != nil {
			t.Fatalf("redocly lint: %v, output %q: %v\n%s", err, out, jerr, stderr)
		}
		problems = append(problems, report.Problems...)
	}
	if reports != len(paths) || err != nil && len(problems) == 0 {
		t.Fatalf("redocly lint: %v, output %q\n%s", err, out, stderr)
	}
	return problems
}
