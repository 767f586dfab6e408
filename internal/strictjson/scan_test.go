package strictjson

import (
	"maps"
	"reflect"
	"testing"

	"github.com/muster-registry/muster/api"
)

// The scanner may only answer where the token walk would answer the same:
// whenever it accepts a document, the walk accepts it too, with the same
// present keys. FuzzScanner explores further from these seeds.
var scanSeeds = []string{
	`{"token":"abc"}`, ` { "token" : "a\\"b\\u00e9" } `, `{"token":null}`, `{"Token":"a"}`, `{"token":"a","token":"b"}`,
	`{"tok\u0065n":"a"}`, `{"heartbeats":[{"namespace":"a","service":"b","id":"c","token":"d"},{"namespace":"a"}]}`,
	`{"heartbeats":[{"namespace":"a","NameSpace":"b"}]}`, `{"id":"a","port":-1.5e+3,"tags":["x",null],"metadata":{"K":"v","k":"w"}}`,
	`{"metadata":{"k":"1","k":"2"}}`, `{"port":01}`, `{"port":-}`, `{"token":"a"`, `{"token":"a",}`, `[1,2]`, `"x"`, ``, `{} x`,
	`{"token":"\x01"}`, `{"default_rule":"manual","routes":[{"name":"a","match":{"headers":{"X-A":"b"}}}]}`, `{"a":tru}`,
	`{"routes":[{"name":"a","match":{"hosts":["x"]}}]}`, `{"id":"é"}`, `{"é":1}`, `{"token":"\u12"}`,
}

var scanTypes = []reflect.Type{
	reflect.TypeOf(&api.HeartbeatRequest{}), reflect.TypeOf(&api.BatchHeartbeatRequest{}),
	reflect.TypeOf(&api.RegisterInstanceRequest{}), reflect.TypeOf(&api.Policy{}),
}

func checkAgrees(t *testing.T, doc string) {
	for _, typ := range scanTypes {
		fast := map[string]bool{}
		if s := (scanner{data: []byte(doc)}); !s.check(typ, fast) {
			continue
		}
		slow, err := walkCheck([]byte(doc), typ, map[string]bool{})
		if err != nil || !maps.Equal(fast, slow) {
			t.Fatalf("%s as %v: scanner accepted with %v, walk: %v, %v", doc, typ, fast, slow, err)
		}
	}
}

func TestScannerAgreesWithWalk(t *testing.T) {
	for _, doc := range scanSeeds {
		checkAgrees(t, doc)
	}
	// The common case takes the fast path.
	if s := (scanner{data: []byte(scanSeeds[6])}); !s.check(scanTypes[1], map[string]bool{}) {
		t.Fatal("the scanner gave up on a plain batch")
	}
}

func FuzzScanner(f *testing.F) {
	for _, doc := range scanSeeds {
		f.Add(doc)
	}
	f.Fuzz(checkAgrees)
}
