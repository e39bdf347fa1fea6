package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
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
	file := map[string]string{}
	if *config != "" {
		data, err := os.ReadFile(*config)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if file, err = readConfig(fs, data); err != nil {
			return fmt.Errorf("config file %s: %w", *config, err)
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
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("config file %s: %s=%q: %w", *config, f.Name, v, e)
			}
		}
	})
	return err
}

// readConfig reads a config file: a JSON object whose keys are flags of
// fs and whose values are strings, numbers or booleans. It returns each
// value as the flag's text.
func readConfig(fs *flag.FlagSet, data []byte) (map[string]string, error) {
	var file map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&file); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	values := make(map[string]string, len(file))
	for k, v := range file {
		if fs.Lookup(k) == nil || k == "config" {
			return nil, fmt.Errorf("unknown setting %q", k)
		}
		switch v := v.(type) {
		case string:
			values[k] = v
		case json.Number:
			values[k] = v.String()
		case bool:
			values[k] = strconv.FormatBool(v)
		default:
			return nil, fmt.Errorf("setting %q: want a string, a number or a boolean", k)
		}
	}
	return values, nil
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
