package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestExitCodes: -h exits 0 for every command, a usage error 2, any other
// failure 1.
func TestExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-h"}, 0},
		{[]string{"help"}, 0},
		{[]string{"version"}, 0},
		{[]string{"-version"}, 0},
		{[]string{"relay", "-h"}, 0},
		{[]string{"registry", "-h"}, 0},
		{[]string{"registrar", "-h"}, 0},
		{[]string{"router", "-h"}, 0},
		{[]string{"demo", "-h"}, 0},
		{[]string{"deadletter", "-h"}, 0},
		{[]string{"deadletter", "list", "-h"}, 0},
		{[]string{"deadletter"}, 2},
		{[]string{"deadletter", "frobnicate"}, 2},
		{[]string{"deadletter", "list", "-broker", "memory://"}, 2},
		{[]string{"deadletter", "purge", "-broker", "memory://", "-subscriber", "s"}, 2},
		{[]string{"deadletter", "show", "-broker", "memory://", "-subscriber", "s"}, 2},
		{[]string{"deadletter", "purge", "-broker", "memory://", "-subscriber", "s", "-all"}, 2},
		{[]string{"deadletter", "show", "-broker", "memory://", "-subscriber", "s", "-id", "nope"}, 1},
		{nil, 2},
		{[]string{"teleport"}, 2},
		{[]string{"relay", "-no-such-flag"}, 2},
		{[]string{"router", "-registry-timeout", "soon"}, 2},
		{[]string{"demo", "-bulk", "many"}, 2},
		{[]string{"demo", "extra"}, 2},
		{[]string{"registrar", "stray"}, 2},
		{[]string{"relay", "-db", "oracle://db/orders", "-broker", "nats://127.0.0.1:1"}, 1},
	} {
		var out, errOut bytes.Buffer
		err := run(ctx, tc.args, &out, &errOut)
		if got := exitCode(err); got != tc.code {
			t.Errorf("courier %s: exit %d (%v), want %d", strings.Join(tc.args, " "), got, err, tc.code)
		}
	}
}

// TestVersion: the version comes from the build information when the
// build sets none.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(out.String())
	if !strings.HasPrefix(got, "courier ") || len(got) <= len("courier ") || strings.Contains(got, "dev\n") {
		t.Fatalf("courier version printed %q", got)
	}
	t.Log(got)
}
