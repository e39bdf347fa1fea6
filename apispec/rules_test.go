package apispec

import (
	"os"
	"regexp"
	"testing"
)

// Every rule is in the package documentation's table and has a test.
func TestEveryRuleDocumentedAndTested(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{
		// TestHandWrittenRules and TestCheck.
		"asyncapi reply-address-changed": true, "asyncapi payload-changed": true,
		" document-removed": true, " document-added": true,
	}
	for _, tc := range schemaRuleCases {
		tested["asyncapi "+tc.rule] = true
	}
	for _, tc := range operationRuleCases {
		tested["asyncapi "+tc.rule] = true
	}
	for _, tc := range protoRuleCases {
		tested["proto "+tc.rule] = true
	}
	seen := map[string]bool{}
	for _, r := range Rules() {
		key := string(r.Format) + " " + r.ID
		if seen[key] {
			t.Errorf("rule %s listed twice", key)
		}
		seen[key] = true
		format := string(r.Format)
		if format == "" {
			format = "any"
		}
		if !regexp.MustCompile(`(?m)^//\t` + regexp.QuoteMeta(r.ID) + ` +` + format + ` `).Match(doc) {
			t.Errorf("rule %s is not in the documentation's table", key)
		}
		if !tested[key] {
			t.Errorf("rule %s has no test", key)
		}
	}
	for key := range tested {
		if !seen[key] {
			t.Errorf("tested rule %s is not in Rules", key)
		}
	}
}
