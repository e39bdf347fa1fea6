package typename

import "testing"

type plain struct{ A int }

type named struct{}

func (named) EventType() string { return "net.example.Named" }

type pnamed struct{}

func (*pnamed) EventType() string { return "Pointer" }

func TestNames(t *testing.T) {
	cases := map[string]string{
		Of(plain{}, "EventType"):        "typename.plain",
		Of(&plain{}, "EventType"):       "typename.plain",
		Of(named{}, "EventType"):        "net.example.Named",
		Of(&pnamed{}, "EventType"):      "Pointer",
		For[plain]("EventType"):         "typename.plain",
		For[named]("EventType"):         "net.example.Named",
		For[*pnamed]("EventType"):       "Pointer",
		Of((*pnamed)(nil), "EventType"): "typename.pnamed",
		Of(nil, "EventType"):            "",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestDecode(t *testing.T) {
	v, err := Decode[plain](func(target any) error { target.(*plain).A = 7; return nil })
	if err != nil || v.A != 7 {
		t.Fatalf("value type: %+v %v", v, err)
	}
	p, err := Decode[*plain](func(target any) error { target.(*plain).A = 9; return nil })
	if err != nil || p.A != 9 {
		t.Fatalf("pointer type: %+v %v", p, err)
	}
}
