package host_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/muster-registry/muster/host"
)

// A standalone host (no registry) with one rendered route and a fallback;
// the same route answers JSON to a client that asks for it.
func Example() {
	hello := host.Service{
		Name: "hello",
		Handler: func(r *http.Request) (any, error) {
			return map[string]string{"name": r.PathValue("name")}, nil
		},
		Setup: []host.Exposure{host.Web("GET", "/hello/{name}", func(r *http.Request, data any) (string, error) {
			return "Hello, " + data.(map[string]string)["name"] + "!", nil
		})},
	}
	index := host.Service{
		Name:    "index",
		Handler: func(*http.Request) (any, error) { return nil, nil },
		Setup: []host.Exposure{host.WebFallback(func(r *http.Request, _ any) (string, error) {
			return "nothing at " + r.URL.Path, nil
		})},
	}
	h := host.New(host.Options{})
	if err := h.Start(context.Background(), []host.Service{hello, index}); err != nil {
		panic(err)
	}
	defer h.Stop(context.Background())
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path, accept string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, body)
		if resp.Header.Get("Content-Type") != "application/json" {
			fmt.Println()
		}
	}
	get("/hello/muster", "text/html")
	get("/hello/muster", "application/json")
	get("/elsewhere", "")
	// Output:
	// 200 Hello, muster!
	// 200 {"name":"muster"}
	// 200 nothing at /elsewhere
}
