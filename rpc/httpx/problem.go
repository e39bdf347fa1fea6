package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem detail, served as application/problem+json.
type Problem struct {
	// Type is a URI naming the kind of problem ("about:blank" if empty).
	Type string `json:"type,omitempty"`
	// Title is a short summary of the kind of problem.
	Title string `json:"title,omitempty"`
	// Status is the HTTP status code.
	Status int `json:"status,omitempty"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Instance is a URI naming this occurrence (often the request path).
	Instance string `json:"instance,omitempty"`
}

// Problem types of the server helpers.
const (
	ProblemOverloaded = "https://courier-go.github.io/problems/overloaded"
	ProblemTimeout    = "https://courier-go.github.io/problems/timeout"
	ProblemNotReady   = "https://courier-go.github.io/problems/not-ready"
)

// WriteProblem writes p with its status (500 if unset) as
// application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: only strings and an int
		body = []byte(`{"status":` + strconv.Itoa(p.Status) + `}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
