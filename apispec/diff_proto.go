package apispec

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoDiffer compares two versions of a .proto file, as buf's WIRE_JSON
// category does: what would misread a message on the wire or in protojson,
// or fail a call, breaks consumers (clients and readers); additions are
// compatible. Elements are matched by their names relative to the
// package, so that a renamed package is reported once.
type protoDiffer struct {
	oldName, newName string
	oldPkg, newPkg   string
	changes          []Change
}

func diffProto(oldName string, old *protoFile, newName string, new *protoFile) []Change {
	d := &protoDiffer{oldName: oldName, newName: newName, oldPkg: string(old.fd.Package()), newPkg: string(new.fd.Package())}
	if d.oldPkg != d.newPkg {
		d.emit("package-changed", "package "+d.newPkg, d.newName, new.fd, fmt.Sprintf("package %s became %s: every full name changes", d.oldPkg, d.newPkg), true)
	}
	compareSets(d, "message", d.messages(old.fd, d.oldPkg), d.messages(new.fd, d.newPkg),
		func(_ string, o, n protoreflect.MessageDescriptor) { d.compareMessage(o, n) })
	compareSets(d, "enum", d.enums(old.fd, d.oldPkg), d.enums(new.fd, d.newPkg), d.compareEnum)
	compareSets(d, "service", d.services(old.fd, d.oldPkg), d.services(new.fd, d.newPkg), d.compareService)
	return d.changes
}

// compareSets compares the elements of one kind (message, enum, service)
// by name: those in both versions with compare, the others as removed
// (breaking) or added.
func compareSets[D protoreflect.Descriptor](d *protoDiffer, kind string, old, new map[string]D, compare func(name string, o, n D)) {
	rule := kind
	if kind == "enum" {
		rule = "enum-type"
	}
	for _, name := range sortedKeys(old) {
		if n, ok := new[name]; ok {
			compare(name, old[name], n)
		} else {
			d.emit(rule+"-removed", kind+" "+name, d.oldName, old[name], kind+" removed", true)
		}
	}
	for _, name := range sortedKeys(new) {
		if _, ok := old[name]; !ok {
			d.emit(rule+"-added", kind+" "+name, d.newName, new[name], kind+" added", false)
		}
	}
}

func (d *protoDiffer) emit(rule, location, file string, at protoreflect.Descriptor, text string, breaking bool) {
	e := Compatible
	if breaking {
		e = Breaking
	}
	source := file
	if at != nil {
		if loc := at.ParentFile().SourceLocations().ByDescriptor(at); loc.Path != nil {
			source = fmt.Sprintf("%s:%d", file, loc.StartLine+1)
		}
	}
	d.changes = append(d.changes, Change{Rule: rule, Location: location, Source: source, Text: text, Breaking: breaking, Consumers: e})
}

// relative names a descriptor without its package.
func relative(full protoreflect.FullName, pkg string) string {
	if pkg == "" {
		return string(full)
	}
	return strings.TrimPrefix(string(full), pkg+".")
}

func (d *protoDiffer) messages(fd protoreflect.FileDescriptor, pkg string) map[string]protoreflect.MessageDescriptor {
	out := map[string]protoreflect.MessageDescriptor{}
	var add func(protoreflect.MessageDescriptors)
	add = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			out[relative(m.FullName(), pkg)] = m
			add(m.Messages())
		}
	}
	add(fd.Messages())
	return out
}

func (d *protoDiffer) enums(fd protoreflect.FileDescriptor, pkg string) map[string]protoreflect.EnumDescriptor {
	out := map[string]protoreflect.EnumDescriptor{}
	addAll := func(es protoreflect.EnumDescriptors) {
		for i := 0; i < es.Len(); i++ {
			out[relative(es.Get(i).FullName(), pkg)] = es.Get(i)
		}
	}
	addAll(fd.Enums())
	for _, m := range d.messages(fd, pkg) {
		addAll(m.Enums())
	}
	return out
}

func (d *protoDiffer) services(fd protoreflect.FileDescriptor, pkg string) map[string]protoreflect.ServiceDescriptor {
	out := map[string]protoreflect.ServiceDescriptor{}
	for i := 0; i < fd.Services().Len(); i++ {
		s := fd.Services().Get(i)
		out[relative(s.FullName(), pkg)] = s
	}
	return out
}

// fieldType names a field's type as the rules compare it: the kind, the
// message or enum relative to its package, map<K, V> for maps.
func (d *protoDiffer) fieldType(f protoreflect.FieldDescriptor, pkg string) string {
	switch {
	case f.IsMap():
		return fmt.Sprintf("map<%s, %s>", d.fieldType(f.MapKey(), pkg), d.fieldType(f.MapValue(), pkg))
	case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
		return relative(f.Message().FullName(), pkg)
	case f.Kind() == protoreflect.EnumKind:
		return relative(f.Enum().FullName(), pkg)
	}
	return f.Kind().String()
}

func cardinality(f protoreflect.FieldDescriptor) string {
	switch {
	case f.IsMap():
		return "map"
	case f.IsList():
		return "repeated"
	case f.Cardinality() == protoreflect.Required:
		return "required"
	case f.HasPresence() && f.ContainingOneof() == nil:
		return "optional"
	}
	return "singular"
}

func oneofName(f protoreflect.FieldDescriptor) string {
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		return string(o.Name())
	}
	return ""
}

func reservedNumber(m protoreflect.MessageDescriptor, n protoreflect.FieldNumber) bool {
	return m.ReservedRanges().Has(n)
}

func (d *protoDiffer) compareMessage(o, n protoreflect.MessageDescriptor) {
	name := relative(n.FullName(), d.newPkg)
	ofs, nfs := o.Fields(), n.Fields()
	for i := 0; i < ofs.Len(); i++ {
		of := ofs.Get(i)
		loc := fmt.Sprintf("message %s field %s (%d)", name, of.Name(), of.Number())
		nf := nfs.ByNumber(of.Number())
		if nf == nil {
			if moved := nfs.ByName(of.Name()); moved != nil {
				d.emit("field-number-changed", loc, d.newName, moved, fmt.Sprintf("field number %d became %d", of.Number(), moved.Number()), true)
				continue
			}
			if reservedNumber(n, of.Number()) && n.ReservedNames().Has(of.Name()) {
				d.emit("field-removed-reserved", loc, d.oldName, of, "field removed, its number and name reserved", false)
			} else {
				d.emit("field-removed", loc, d.oldName, of, "field removed without reserving its number and name", true)
			}
			continue
		}
		ot, nt := d.fieldType(of, d.oldPkg), d.fieldType(nf, d.newPkg)
		switch {
		case of.Name() != nf.Name() && ot != nt:
			d.emit("field-number-reused", loc, d.newName, nf, fmt.Sprintf("field number %d now belongs to %s %s", of.Number(), nt, nf.Name()), true)
			continue
		case of.Name() != nf.Name():
			d.emit("field-renamed", loc, d.newName, nf, fmt.Sprintf("field renamed to %s (the JSON name and the generated code change)", nf.Name()), true)
		case ot != nt:
			d.emit("field-type-changed", loc, d.newName, nf, fmt.Sprintf("type %s became %s", ot, nt), true)
		}
		if oc, nc := cardinality(of), cardinality(nf); oc != nc {
			d.emit("field-cardinality-changed", loc, d.newName, nf, fmt.Sprintf("%s became %s", oc, nc), true)
		}
		if oo, no := oneofName(of), oneofName(nf); oo != no {
			d.emit("field-oneof-changed", loc, d.newName, nf, fmt.Sprintf("oneof %q became %q", oo, no), true)
		}
		if of.Name() == nf.Name() && of.JSONName() != nf.JSONName() {
			d.emit("field-json-name-changed", loc, d.newName, nf, fmt.Sprintf("JSON name %s became %s", of.JSONName(), nf.JSONName()), true)
		}
	}
	for i := 0; i < nfs.Len(); i++ {
		nf := nfs.Get(i)
		if ofs.ByNumber(nf.Number()) != nil || ofs.ByName(nf.Name()) != nil {
			continue
		}
		loc := fmt.Sprintf("message %s field %s (%d)", name, nf.Name(), nf.Number())
		if reservedNumber(o, nf.Number()) || o.ReservedNames().Has(nf.Name()) {
			d.emit("reserved-field-reused", loc, d.newName, nf, "field takes a number or name the older version reserved", true)
			continue
		}
		d.emit("field-added", loc, d.newName, nf, "field added", false)
	}
}

func (d *protoDiffer) compareEnum(name string, o, n protoreflect.EnumDescriptor) {
	ovs, nvs := o.Values(), n.Values()
	for i := 0; i < ovs.Len(); i++ {
		ov := ovs.Get(i)
		loc := fmt.Sprintf("enum %s value %s (%d)", name, ov.Name(), ov.Number())
		nv := nvs.ByNumber(ov.Number())
		switch {
		case nv == nil && n.ReservedRanges().Has(ov.Number()) && n.ReservedNames().Has(ov.Name()):
			d.emit("enum-value-removed-reserved", loc, d.oldName, ov, "enum value removed, its number and name reserved", false)
		case nv == nil:
			d.emit("enum-value-removed", loc, d.oldName, ov, "enum value removed", true)
		case nv.Name() != ov.Name():
			d.emit("enum-value-renamed", loc, d.newName, nv, fmt.Sprintf("enum value renamed to %s (protojson writes names)", nv.Name()), true)
		}
	}
	for i := 0; i < nvs.Len(); i++ {
		if nv := nvs.Get(i); ovs.ByNumber(nv.Number()) == nil {
			d.emit("enum-value-added", fmt.Sprintf("enum %s value %s (%d)", name, nv.Name(), nv.Number()), d.newName, nv, "enum value added", false)
		}
	}
}

func (d *protoDiffer) compareService(name string, o, n protoreflect.ServiceDescriptor) {
	oms, nms := o.Methods(), n.Methods()
	for i := 0; i < oms.Len(); i++ {
		om := oms.Get(i)
		loc := fmt.Sprintf("rpc %s.%s", name, om.Name())
		nm := nms.ByName(om.Name())
		if nm == nil {
			d.emit("rpc-removed", loc, d.oldName, om, "rpc removed", true)
			continue
		}
		if oi, ni := relative(om.Input().FullName(), d.oldPkg), relative(nm.Input().FullName(), d.newPkg); oi != ni {
			d.emit("rpc-request-changed", loc, d.newName, nm, fmt.Sprintf("request type %s became %s", oi, ni), true)
		}
		if oo, no := relative(om.Output().FullName(), d.oldPkg), relative(nm.Output().FullName(), d.newPkg); oo != no {
			d.emit("rpc-response-changed", loc, d.newName, nm, fmt.Sprintf("response type %s became %s", oo, no), true)
		}
		if om.IsStreamingClient() != nm.IsStreamingClient() || om.IsStreamingServer() != nm.IsStreamingServer() {
			d.emit("rpc-streaming-changed", loc, d.newName, nm, fmt.Sprintf("streaming %s became %s", streaming(om), streaming(nm)), true)
		}
	}
	for i := 0; i < nms.Len(); i++ {
		if nm := nms.Get(i); oms.ByName(nm.Name()) == nil {
			d.emit("rpc-added", fmt.Sprintf("rpc %s.%s", name, nm.Name()), d.newName, nm, "rpc added", false)
		}
	}
}

func streaming(m protoreflect.MethodDescriptor) string {
	switch {
	case m.IsStreamingClient() && m.IsStreamingServer():
		return "bidirectional"
	case m.IsStreamingClient():
		return "client"
	case m.IsStreamingServer():
		return "server"
	}
	return "none"
}
