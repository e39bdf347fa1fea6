package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// parseFlags parses args into fs, then fills every flag not given on the
// command line from the environment (COURIER_<NAME>) or, failing that, from
// the JSON object in the file named by the -config flag.
func parseFlags(fs *flag.FlagSet, args []string) error {
	config := fs.String("config", "", "JSON file of flag values (env COURIER_CONFIG)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["config"] {
		if v, ok := os.LookupEnv(envName("config")); ok {
			*config = v
		}
	}
	file := map[string]any{}
	if *config != "" {
		data, err := os.ReadFile(*config)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := json.Unmarshal(data, &file); err != nil {
			return fmt.Errorf("config file %s: %w", *config, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config file %s: unknown setting %q", *config, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s := fmt.Sprint(v)
			if e := f.Value.Set(s); e != nil {
				err = fmt.Errorf("config file %s: %s=%q: %w", *config, f.Name, s, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "COURIER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newLogger builds the structured logger the flags ask for.
func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", format)
}
