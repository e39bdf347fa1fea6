package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/courier-go/courier/apispec"
)

// apiCommand compares API documents (AsyncAPI, OpenAPI, .proto) and checks
// them against a baseline: courier api diff | check | rules.
type apiCommand struct{}

const apiUsage = `usage: courier api <command> [flags]

commands:
  diff OLD NEW                     compare two versions of an AsyncAPI, OpenAPI or .proto document
  check -baseline DIR [CURRENT]    compare every document of DIR with the file of the same path in
                                   CURRENT (default .) and enforce semantic versioning
  rules                            list the compatibility rules

Every change is named with its rule and its place and classified for the
consumers (and, for messages, the publishers) of the API. diff exits 1
when a change is breaking; check exits 1 when a document's version does
not follow its changes (a breaking change needs a new major version, a
compatible one a new minor version) or a document is gone. -json writes
the reports as JSON. Flags may also come from COURIER_<FLAG>.
`

func (c *apiCommand) run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apiUsage)
		return usageError{errors.New("api: no command given")}
	}
	switch args[0] {
	case "diff":
		return c.diff(args[1:], stdout, stderr)
	case "check":
		return c.check(args[1:], stdout, stderr)
	case "rules":
		return c.rules(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, apiUsage)
		return nil
	}
	fmt.Fprint(stderr, apiUsage)
	return usageError{fmt.Errorf("api: unknown command %q", args[0])}
}

// parseAPIFlags parses flags given before, between or after the
// positional arguments, fills those not given from the environment
// (COURIER_<NAME>), and checks the number of positional arguments.
func parseAPIFlags(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) < minArgs || len(positional) > maxArgs {
		fs.Usage()
		return nil, usageError{fmt.Errorf("api %s: want %d to %d arguments, have %d: %q", fs.Name(), minArgs, maxArgs, len(positional), positional)}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !given[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)}
			}
		}
	})
	return positional, err
}

func apiFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// loadFile reads a document; a .proto file may import the files of its
// directory.
func loadFile(path string) (*apispec.Document, error) {
	return apispec.Load(os.DirFS(filepath.Dir(path)), filepath.Base(path))
}

func (c *apiCommand) diff(args []string, stdout, stderr io.Writer) error {
	fs := apiFlagSet("diff", `usage: courier api diff [-json] OLD NEW

Compares two versions of one API document (AsyncAPI 3.0, OpenAPI 3.0 or
3.1, or a .proto file) and lists every change with its rule and place,
the least version increase the changes require, and whether NEW's version
follows them. Exits 1 when a change is breaking.

`, stderr)
	asJSON := fs.Bool("json", false, "write the report as JSON")
	files, err := parseAPIFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	old, err := loadFile(files[0])
	if err != nil {
		return fmt.Errorf("api diff: %w", err)
	}
	new, err := loadFile(files[1])
	if err != nil {
		return fmt.Errorf("api diff: %w", err)
	}
	r, err := apispec.Diff(old, new)
	if err != nil {
		return fmt.Errorf("api diff: %w", err)
	}
	r.Old, r.New = files[0], files[1]
	if *asJSON {
		err = writeJSON(stdout, r)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if n := countBreaking(r); n > 0 {
		return fmt.Errorf("api diff: %d breaking changes", n)
	}
	return nil
}

func countBreaking(r *apispec.Report) int {
	n := 0
	for _, c := range r.Changes {
		if c.Breaking {
			n++
		}
	}
	return n
}

func (c *apiCommand) check(args []string, stdout, stderr io.Writer) error {
	fs := apiFlagSet("check", `usage: courier api check [-json] [-update] -baseline DIR [CURRENT]

Compares every API document under DIR (the versions last released,
committed) with the file of the same path under CURRENT (default .), and
enforces semantic versioning: a breaking change needs a new major
version, a compatible change at least a new minor one, and a document
may not disappear. New documents in CURRENT are reported; JSON and YAML
files there that are not API documents are skipped. Exits 1 when a
document breaks the rules. -update then copies the current documents into
DIR, once the check passes.

`, stderr)
	asJSON := fs.Bool("json", false, "write the reports as JSON")
	baseline := fs.String("baseline", "", "directory of the baseline documents")
	update := fs.Bool("update", false, "after a passing check, copy the current documents into the baseline")
	dirs, err := parseAPIFlags(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if *baseline == "" {
		fs.Usage()
		return usageError{errors.New("api check: -baseline DIR is required")}
	}
	current := "."
	if len(dirs) == 1 {
		current = dirs[0]
	}
	for _, dir := range []string{*baseline, current} {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return fmt.Errorf("api check: %s is not a directory", dir)
		}
	}
	reports, err := apispec.Check(os.DirFS(*baseline), os.DirFS(current))
	if err != nil {
		return fmt.Errorf("api check: %w", err)
	}
	passed := apispec.CheckPassed(reports)
	if *asJSON {
		err = writeJSON(stdout, struct {
			Baseline string            `json:"baseline"`
			Current  string            `json:"current"`
			Passed   bool              `json:"passed"`
			Reports  []*apispec.Report `json:"reports"`
		}{*baseline, current, passed, reports})
	} else {
		for _, r := range reports {
			if err = r.WriteText(stdout); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if !passed {
		failed := 0
		for _, r := range reports {
			if r.VersionError != "" {
				failed++
			}
		}
		return fmt.Errorf("api check: %d of %d documents break the versioning rules against %s", failed, len(reports), *baseline)
	}
	if *update {
		return copyDocuments(reports, current, *baseline, stderr)
	}
	return nil
}

// copyDocuments copies the current version of every document checked into
// the baseline.
func copyDocuments(reports []*apispec.Report, from, to string, stderr io.Writer) error {
	for _, r := range reports {
		if r.New == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, filepath.FromSlash(r.New)))
		if err != nil {
			return fmt.Errorf("api check -update: %w", err)
		}
		dst := filepath.Join(to, filepath.FromSlash(r.New))
		if old, err := os.ReadFile(dst); err == nil && string(old) == string(data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("api check -update: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return fmt.Errorf("api check -update: %w", err)
		}
		fmt.Fprintf(stderr, "updated %s\n", dst)
	}
	return nil
}

func (c *apiCommand) rules(args []string, stdout, stderr io.Writer) error {
	fs := apiFlagSet("rules", "usage: courier api rules [-json]\n\nLists Courier's compatibility rules (OpenAPI documents follow oasdiff's).\n\n", stderr)
	asJSON := fs.Bool("json", false, "write the rules as JSON")
	if _, err := parseAPIFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, apispec.Rules())
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tFORMAT\tCONSUMERS\tPUBLISHERS\tCHANGE")
	for _, r := range apispec.Rules() {
		format := string(r.Format)
		if format == "" {
			format = "any"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.ID, format, r.Consumers, orDash(r.Publishers), r.Text)
	}
	return w.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
