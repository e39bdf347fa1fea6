package apispec

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// jsonToYAML writes JSON text as block-style YAML, keeping the order of
// its keys; strings that would read back as another type stay quoted.
func jsonToYAML(data []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("apispec: JSON to YAML: %w", err)
	}
	var plain func(*yaml.Node)
	plain = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			plain(c)
		}
	}
	plain(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("apispec: JSON to YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("apispec: JSON to YAML: %w", err)
	}
	return buf.Bytes(), nil
}
