// Package typename names message types: the name a value declares through a
// method (EventType, CommandType, ReplyType), or else its Go type's name.
package typename

import "reflect"

// Of returns the name of v's type: the result of method on v (such as
// "EventType") when v has it, or else the Go type's package-qualified name
// ("orders.OrderCreated"), without pointer marks.
func Of(v any, method string) string {
	if v == nil {
		return ""
	}
	rv := reflect.ValueOf(v)
	if m := rv.MethodByName(method); m.IsValid() && m.Type().NumIn() == 0 && m.Type().NumOut() == 1 && m.Type().Out(0).Kind() == reflect.String {
		if rv.Kind() != reflect.Pointer || !rv.IsNil() {
			return m.Call(nil)[0].String()
		}
	}
	t := rv.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

// For returns the name of type T, as Of would for a value of it. For a
// pointer type it asks a new zero value of the element type.
func For[T any](method string) string {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Pointer {
		return Of(reflect.New(t.Elem()).Interface(), method)
	}
	var zero T
	return Of(any(zero), method)
}

// Decode makes a new T and lets decode fill it: for a pointer type T, a new
// element; for any other type, a zero value through its address.
func Decode[T any](decode func(target any) error) (T, error) {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Pointer {
		v := reflect.New(t.Elem()).Interface().(T)
		return v, decode(v)
	}
	var v T
	err := decode(&v)
	return v, err
}
