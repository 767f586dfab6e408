package fsm_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/state"
)

func TestCommandCodec(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 123e6, time.UTC)
	yes := true
	timeout := 10
	tags := []string{"a"}
	ik := state.InstanceKey{Namespace: "ns", Service: "svc", ID: "web-1"}
	tests := []struct {
		name    string
		input   fsm.Command
		wantTag byte // the type byte is part of the log format: it never changes
	}{
		{"register revision", &fsm.RegisterRevision{Time: now, Namespace: "ns", Name: "svc", Tag: "1.2.9", IsDefault: &yes, Metadata: map[string]string{"k": "v"}}, 1},
		{"delete revision", &fsm.DeleteRevision{Time: now, Namespace: "ns", Name: "svc", Tag: "1.2.9"}, 2},
		{"register instance", &fsm.RegisterInstance{Time: now, Replace: true, Instance: state.Instance{Namespace: "ns", Service: "svc", ID: "web-1", Port: 80, Tags: tags, HeartbeatTimeout: 30, Token: "t"}}, 3},
		{"patch instance", &fsm.PatchInstance{Time: now, Key: ik, Patch: api.PatchInstanceRequest{Tags: &tags, HeartbeatTimeout: &timeout}}, 4},
		{"deregister instance", &fsm.DeregisterInstance{Time: now, Key: ik}, 5},
		{"expire instances", &fsm.ExpireInstances{Time: now, Items: []state.Expiry{{Key: ik, RegIndex: 7, Deadline: now}}}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := fsm.Encode(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != tc.wantTag {
				t.Fatalf("type byte = %d, want %d", b[0], tc.wantTag)
			}
			got, err := fsm.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.input) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tc.input)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "empty"},
		{"unknown type", []byte{0, '{', '}'}, "unknown command type 0"},
		{"type after the last", []byte{10, '{', '}'}, "unknown command type 10"},
		{"bad body", []byte{1, '['}, "decoding command 1"},
		{"no body", []byte{2}, "decoding command 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := fsm.Decode(tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, %v; want an error containing %q", c, err, tc.want)
			}
		})
	}
}

func TestApplyPanicsOnACorruptEntry(t *testing.T) {
	f := fsm.New(state.New(0, nil))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "log entry 42") {
			t.Fatalf("recovered %v, want a panic naming the entry", r)
		}
	}()
	f.Apply(&raft.Log{Index: 42, Data: []byte{99}})
}

func TestRestoreErrorIsWrapped(t *testing.T) {
	f := fsm.New(state.New(0, nil))
	rc := &closeCounter{Reader: strings.NewReader(`{"version":99}`)}
	err := f.Restore(rc)
	if err == nil || !strings.Contains(err.Error(), "fsm: restore") {
		t.Fatalf("Restore = %v", err)
	}
	if rc.closed != 1 {
		t.Fatalf("Restore closed the reader %d times, want 1", rc.closed)
	}
}

type closeCounter struct {
	*strings.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }
