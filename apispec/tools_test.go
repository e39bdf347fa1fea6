package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The official tools check what the package writes and second the
// protobuf rules: the AsyncAPI project's parser, Redocly's OpenAPI linter
// and buf. scripts/services/apitools.sh installs them from npm (scripts/test
// runs it as root); COURIER_API_TOOLS names the directory it installed
// them in.

const (
	apiToolsEnv     = "COURIER_API_TOOLS"
	defaultAPITools = "/opt/courier-api-tools"
)

// apiTool returns the path of an installed tool's file (under
// node_modules), or skips the test, failing it under CI.
func apiTool(t *testing.T, file string) (dir, path string) {
	t.Helper()
	dir = os.Getenv(apiToolsEnv)
	if dir == "" {
		dir = defaultAPITools
	}
	path = filepath.Join(dir, "node_modules", file)
	_, statErr := os.Stat(path)
	_, nodeErr := exec.LookPath("node")
	if statErr != nil || nodeErr != nil {
		msg := fmt.Sprintf("%s is not installed in %s (or node is missing); install the tools with scripts/services/apitools.sh (or set %s)", file, dir, apiToolsEnv)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir, path
}

func runTool(t *testing.T, dir string, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+filepath.Join(dir, "node_modules"),
		"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "SCARF_ANALYTICS=false", "BUF_CACHE_DIR="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// writeDocs writes documents into a new directory and returns their paths.
func writeDocs(t *testing.T, docs map[string][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for _, name := range sortedKeys(docs) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, docs[name], 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestAsyncAPIParserAcceptsGeneratedDocuments(t *testing.T) {
	dir, _ := apiTool(t, "@asyncapi/parser/package.json")
	docs := map[string][]byte{}
	for name, s := range toolSpecs(t) {
		doc, err := s.AsyncAPI()
		if err != nil {
			t.Fatal(err)
		}
		docs[name+".asyncapi.json"] = doc.JSON()
		y, err := doc.YAML()
		if err != nil {
			t.Fatal(err)
		}
		docs[name+".asyncapi.yaml"] = y
	}
	// A broken document, to show that the parser finds errors.
	docs["broken.asyncapi.json"] = []byte(`{"asyncapi":"3.0.0","info":{"title":"t","version":"1.0.0"},
  "operations":{"op":{"action":"publish","channel":{"$ref":"#/channels/missing"}}}}`)
	paths := writeDocs(t, docs)
	out, stderr, err := runTool(t, dir, "node", append([]string{"testdata/asyncapi-validate.cjs"}, paths...)...)
	if err != nil {
		t.Fatalf("asyncapi parser: %v\n%s", err, stderr)
	}
	results := 0
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var r struct {
			File        string `json:"file"`
			Diagnostics []struct {
				Severity int    `json:"severity"`
				Code     string `json:"code"`
				Message  string `json:"message"`
				Path     []any  `json:"path"`
			} `json:"diagnostics"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("parser output %q: %v", line, err)
		}
		results++
		broken := strings.HasSuffix(r.File, "broken.asyncapi.json")
		errors := 0
		for _, d := range r.Diagnostics {
			if d.Severity > 1 { // information and hints: the newer 3.1.0 exists
				continue
			}
			errors++
			if !broken {
				t.Errorf("%s: %s %s at %v", filepath.Base(r.File), d.Code, d.Message, d.Path)
			}
		}
		if broken && errors == 0 {
			t.Errorf("the parser found nothing wrong with the broken document")
		}
	}
	if results != len(docs) {
		t.Errorf("the parser reported on %d documents of %d", results, len(docs))
	}
}

func TestRedoclyLintsGeneratedDocuments(t *testing.T) {
	dir, _ := apiTool(t, "@redocly/cli/package.json")
	docs := map[string][]byte{}
	for name, s := range toolSpecs(t) {
		doc, err := s.OpenAPI()
		if err != nil {
			t.Fatal(err)
		}
		docs[name+".openapi.json"] = doc.JSON()
	}
	paths := writeDocs(t, docs)
	config, err := filepath.Abs("testdata/redocly.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "redocly")
	out, stderr, err := runTool(t, dir, bin, append([]string{"lint", "--config", config, "--format", "json"}, paths...)...)
	var report struct {
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Source  struct{ Ref string } `json:"source"`
				Pointer string               `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil {
		t.Fatalf("redocly lint: %v, output %q: %v\n%s", err, out, jerr, stderr)
	}
	for _, p := range report.Problems {
		t.Errorf("redocly %s %s: %s %+v", p.Severity, p.RuleID, p.Message, p.Location)
	}
	if err != nil && len(report.Problems) == 0 {
		t.Errorf("redocly lint: %v\n%s", err, stderr)
	}
}

// TestBufAgreesOnProtoRules runs buf breaking on every protobuf rule case,
// with its WIRE_JSON rules and those against deleting messages, enums,
// services and rpcs: buf must find a breaking change exactly where
// Courier does.
func TestBufAgreesOnProtoRules(t *testing.T) {
	dir, _ := apiTool(t, "@bufbuild/buf/package.json")
	bin := filepath.Join(dir, "node_modules", ".bin", "buf")
	config := `{"version":"v2","breaking":{"use":["WIRE_JSON","PACKAGE_NO_DELETE","PACKAGE_MESSAGE_NO_DELETE","PACKAGE_ENUM_NO_DELETE","PACKAGE_SERVICE_NO_DELETE","RPC_NO_DELETE"]}}`
	for _, tc := range protoRuleCases {
		t.Run(tc.rule, func(t *testing.T) {
			oldDir, newDir := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(oldDir, "shop.proto"), []byte(protoBase), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(newDir, "shop.proto"), []byte(tc.edited(t)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, err := runTool(t, dir, bin, "breaking", newDir, "--against", oldDir, "--config", config)
			bufBreaking := err != nil
			if bufBreaking && len(out) == 0 {
				t.Fatalf("buf breaking: %v\n%s", err, stderr)
			}
			if bufBreaking != tc.breaking {
				t.Errorf("%s: buf says breaking %v, Courier %v\n%s", tc.rule, bufBreaking, tc.breaking, out)
			}
		})
	}
}

// toolSpecs returns the specs whose documents the tools check.
func toolSpecs(t *testing.T) map[string]*Spec {
	t.Helper()
	return map[string]*Spec{"kitchen": kitchenSpec()}
}
