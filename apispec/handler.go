package apispec

import (
	"net/http"
	"strconv"

	"github.com/courier-go/courier/rpc/httpx"
)

// Handler serves the Spec's documents, built for each request:
// /asyncapi.json, /asyncapi.yaml, /openapi.json and /openapi.yaml (GET
// and HEAD). Mount it under a prefix with http.StripPrefix:
//
//	mux.Handle("/api/", http.StripPrefix("/api", spec.Handler()))
//
// Other paths answer 404 and a Spec that fails to build its documents
// 500, as problem+json.
func (s *Spec) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var build func() (*Document, error)
		yaml := false
		switch r.URL.Path {
		case "/asyncapi.json":
			build = s.AsyncAPI
		case "/asyncapi.yaml":
			build, yaml = s.AsyncAPI, true
		case "/openapi.json":
			build = s.OpenAPI
		case "/openapi.yaml":
			build, yaml = s.OpenAPI, true
		default:
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusNotFound, Detail: "no API document at " + r.URL.Path, Instance: r.URL.Path})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusMethodNotAllowed, Instance: r.URL.Path})
			return
		}
		doc, err := build()
		var body []byte
		if err == nil {
			body = doc.JSON()
			if yaml {
				body, err = doc.YAML()
			}
		}
		if err != nil {
			httpx.WriteProblem(w, httpx.Problem{Status: http.StatusInternalServerError, Detail: err.Error(), Instance: r.URL.Path})
			return
		}
		ct := "application/json"
		if yaml {
			ct = "application/yaml"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
