package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	sections := strings.Split(strings.TrimSpace(out.String()), "\n\n")
	if len(sections) != 5 {
		t.Fatalf("%d sections", len(sections))
	}
	// Each section: both adapters behave alike.
	want := [][]string{
		{"3 calls -> 25 min (kitchen)", "kitchen saw 3, breaker closed"},
		{`unknown restaurant "noodle-bar"`, "kitchen saw 3, breaker closed"},
		{"5 calls -> 60 min (fallback)", "kitchen saw 3, breaker open"},
		{"2 calls -> 60 min (fallback)", "kitchen saw 1, breaker open"},
		{"2 calls -> 25 min (kitchen)", "kitchen saw 2, breaker closed"},
	}
	for i, w := range want {
		lines := strings.Split(strings.TrimSpace(sections[i]), "\n")[1:]
		if len(lines) != 2 {
			t.Fatalf("section %d: %q", i+1, lines)
		}
		for _, l := range lines {
			for _, s := range w {
				if !strings.Contains(l, s) {
					t.Errorf("section %d: %q lacks %q", i+1, l, s)
				}
			}
		}
	}
}
