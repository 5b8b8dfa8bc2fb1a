package ir

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCompactJSONRoundTrip(t *testing.T) {
	in := Dispatch{Unit: "u", UIDs: UIDRanges{{0, 999, -1}, {1000, 1000, 3}, {1001, MaxUID, 0}}}
	p := Principal{Ref: "group:x", UIDs: Intervals{{1, 1}, {5, 9}, {MaxUID, MaxUID}}}
	for _, v := range []any{&in, &p} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !reflect.DeepEqual(v, out) {
			t.Errorf("%s: round trip gives %+v, want %+v", data, out, v)
		}
	}
	if data, _ := json.Marshal(&in); string(data) != `{"Unit":"u","Cgroup":"","Level":0,"UIDs":"0-999:-1,1000:3,1001-4294967295:0"}` {
		t.Errorf("dispatch JSON = %s", data)
	}
}

func TestCompactJSONReadsOldForm(t *testing.T) {
	var d Dispatch
	if err := json.Unmarshal([]byte(`{"UIDs":[{"Lo":0,"Hi":5,"Profile":-1}]}`), &d); err != nil || !reflect.DeepEqual(d.UIDs, UIDRanges{{0, 5, -1}}) {
		t.Errorf("old dispatch form: %+v %v", d.UIDs, err)
	}
	var p Principal
	if err := json.Unmarshal([]byte(`{"UIDs":[{"Lo":7,"Hi":7}]}`), &p); err != nil || !reflect.DeepEqual(p.UIDs, Intervals{{7, 7}}) {
		t.Errorf("old principal form: %+v %v", p.UIDs, err)
	}
	for _, bad := range []string{`"5-1:0"`, `"x:0"`, `"1-2"`, `"1:-2"`, `"99999999999:0"`} {
		var rs UIDRanges
		if err := json.Unmarshal([]byte(bad), &rs); err == nil {
			t.Errorf("%s accepted: %+v", bad, rs)
		}
	}
}
