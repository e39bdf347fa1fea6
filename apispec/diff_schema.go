package apispec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// sides says which sides of a message depend on the document: its
// consumers, when the service sends it (or answers with it), its
// publishers, when the service receives it.
type sides struct{ consumers, publishers bool }

// breaks reports whether a change with these effects breaks a side that
// depends on the document.
func (s sides) breaks(consumers, publishers Effect) bool {
	return (s.consumers && consumers == Breaking) || (s.publishers && publishers == Breaking)
}

// schemaDiffer compares the two versions of one schema of a message (its
// payload or its headers) and records the changes, each classified for
// the message's readers (consumers) and writers (publishers):
//
//   - what a writer may send and the reader may not expect (a new type, an
//     enum value, a property that became optional, a removed property the
//     reader relied on) breaks consumers;
//   - what a reader now demands and a writer may not send (a required
//     property, a narrower type, a removed enum value) breaks publishers.
type schemaDiffer struct {
	old, new *schemaResolver
	sides    sides
	location string // "message orders.OrderCreated payload"
	changes  []Change
	seen     map[[2]string]bool
}

func (d *schemaDiffer) emit(rule, path, source, text string, consumers, publishers Effect) {
	d.changes = append(d.changes, Change{
		Rule:       rule,
		Location:   d.location + path,
		Source:     source,
		Text:       text,
		Breaking:   d.sides.breaks(consumers, publishers),
		Consumers:  consumers,
		Publishers: publishers,
	})
}

// widened classifies a change that lets a schema accept more (a reader
// may meet values it does not know), narrowed one that lets it accept less
// (a writer may send what is now refused).
var (
	widened  = [2]Effect{Breaking, Compatible}
	narrowed = [2]Effect{Compatible, Breaking}
	both     = [2]Effect{Breaking, Breaking}
	neither  = [2]Effect{Compatible, Compatible}
)

func (d *schemaDiffer) emitE(rule, path, source, text string, e [2]Effect) {
	d.emit(rule, path, source, text, e[0], e[1])
}

var anything = &jsonSchema{}

// compare compares o (at optr) with n (at nptr); path is the place in the
// message part, ".items[].price".
func (d *schemaDiffer) compare(o *jsonSchema, optr string, n *jsonSchema, nptr string, path string) error {
	var err error
	if o, optr, err = d.old.resolve(o, optr); err != nil {
		return err
	}
	if n, nptr, err = d.new.resolve(n, nptr); err != nil {
		return err
	}
	if o == nil {
		o = anything
	}
	if n == nil {
		n = anything
	}
	pair := [2]string{optr, nptr}
	if d.seen[pair] && optr != "" {
		return nil
	}
	d.seen[pair] = true
	if o.Bool != nil || n.Bool != nil {
		ob, nb := o.Bool == nil || *o.Bool, n.Bool == nil || *n.Bool
		switch {
		case ob && !nb:
			d.emitE("type-changed", path, nptr, "the schema now accepts nothing (false)", narrowed)
			return nil
		case !ob && nb:
			d.emitE("type-changed", path, nptr, "the schema accepted nothing (false) and now accepts values", widened)
			return nil
		case !ob && !nb:
			return nil
		}
	}
	ot, nt := typeSet(o.Type), typeSet(n.Type)
	if !sameTypes(ot, nt) {
		e := both
		switch {
		case covers(nt, ot):
			e = widened
		case covers(ot, nt):
			e = narrowed
		}
		d.emitE("type-changed", path, nptr, fmt.Sprintf("type %s became %s", typeText(o.Type), typeText(n.Type)), e)
	}
	d.compareFormat(o, n, path, nptr)
	d.compareConst(o, n, path, nptr)
	d.compareEnum(o, n, path, nptr)
	if allows(ot, "object") && allows(nt, "object") {
		if err := d.compareObject(o, optr, n, nptr, path); err != nil {
			return err
		}
	}
	if allows(ot, "array") && allows(nt, "array") && (o.Items != nil || n.Items != nil) {
		if err := d.compare(o.Items, optr+"/items", n.Items, nptr+"/items", path+"[]"); err != nil {
			return err
		}
	}
	return d.compareComposition(o, optr, n, nptr, path)
}

func (d *schemaDiffer) compareFormat(o, n *jsonSchema, path, nptr string) {
	switch {
	case o.Format == n.Format:
	case o.Format == "":
		d.emitE("format-changed", path, nptr, fmt.Sprintf("format %q added", n.Format), narrowed)
	case n.Format == "":
		d.emitE("format-changed", path, nptr, fmt.Sprintf("format %q removed", o.Format), widened)
	default:
		d.emitE("format-changed", path, nptr, fmt.Sprintf("format %q became %q", o.Format, n.Format), both)
	}
}

func (d *schemaDiffer) compareConst(o, n *jsonSchema, path, nptr string) {
	oc, nc := canonical(o.Const), canonical(n.Const)
	switch {
	case o.HasConst == n.HasConst && oc == nc:
	case !o.HasConst:
		d.emitE("const-changed", path, nptr, "fixed to "+nc, narrowed)
	case !n.HasConst:
		d.emitE("const-changed", path, nptr, "no longer fixed to "+oc, widened)
	default:
		d.emitE("const-changed", path, nptr, fmt.Sprintf("fixed value %s became %s", oc, nc), both)
	}
}

func (d *schemaDiffer) compareEnum(o, n *jsonSchema, path, nptr string) {
	switch {
	case o.Enum == nil && n.Enum == nil:
		return
	case o.Enum == nil:
		d.emitE("enum-added", path, nptr, "values limited to "+enumText(n.Enum), narrowed)
		return
	case n.Enum == nil:
		d.emitE("enum-removed", path, nptr, "values no longer limited to "+enumText(o.Enum), widened)
		return
	}
	ov, nv := valueSet(o.Enum), valueSet(n.Enum)
	for _, v := range sortedKeys(ov) {
		if !nv[v] {
			d.emitE("enum-value-removed", path, nptr, "enum value "+v+" removed", narrowed)
		}
	}
	for _, v := range sortedKeys(nv) {
		if !ov[v] {
			d.emitE("enum-value-added", path, nptr, "enum value "+v+" added", widened)
		}
	}
}

func (d *schemaDiffer) compareObject(o *jsonSchema, optr string, n *jsonSchema, nptr string, path string) error {
	oreq, nreq := stringSet(o.Required), stringSet(n.Required)
	refusesExtra := n.AdditionalProperties != nil && n.AdditionalProperties.Bool != nil && !*n.AdditionalProperties.Bool
	removedNumbers := map[int]string{}
	for _, name := range sortedKeys(o.Properties) {
		if _, ok := n.Properties[name]; ok {
			continue
		}
		e := widened
		if refusesExtra {
			e = both
		}
		d.emitE("property-removed", path+"."+name, optr+"/properties/"+escapePointer(name), "property removed", e)
		if num := o.Properties[name].FieldNumber; num != 0 {
			removedNumbers[num] = name
		}
	}
	for _, name := range sortedKeys(n.Properties) {
		np := n.Properties[name]
		source := nptr + "/properties/" + escapePointer(name)
		op, ok := o.Properties[name]
		if !ok {
			if nreq[name] {
				d.emitE("required-property-added", path+"."+name, source, "required property added", narrowed)
			} else {
				d.emitE("property-added", path+"."+name, source, "optional property added", neither)
			}
			if old, reused := removedNumbers[np.FieldNumber]; reused && np.FieldNumber != 0 {
				d.emitE("field-number-reused", path+"."+name, source, fmt.Sprintf("protobuf field number %d was %s's", np.FieldNumber, old), both)
			}
			continue
		}
		switch {
		case oreq[name] && !nreq[name]:
			d.emitE("property-optional", path+"."+name, source, "property no longer required", widened)
		case !oreq[name] && nreq[name]:
			d.emitE("property-required", path+"."+name, source, "property now required", narrowed)
		}
		if op.FieldNumber != 0 && np.FieldNumber != 0 && op.FieldNumber != np.FieldNumber {
			d.emitE("field-number-changed", path+"."+name, source, fmt.Sprintf("protobuf field number %d became %d", op.FieldNumber, np.FieldNumber), both)
		}
		if err := d.compare(op, optr+"/properties/"+escapePointer(name), np, source, path+"."+name); err != nil {
			return err
		}
	}
	oa, na := o.AdditionalProperties, n.AdditionalProperties
	oRefuses := oa != nil && oa.Bool != nil && !*oa.Bool
	switch {
	case refusesExtra && !oRefuses:
		d.emitE("additional-properties-refused", path, nptr, "properties not listed are now refused", narrowed)
	case oRefuses && !refusesExtra:
		d.emitE("additional-properties-allowed", path, nptr, "properties not listed are now allowed", neither)
	case oa != nil && na != nil && oa.Bool == nil && na.Bool == nil:
		return d.compare(oa, optr+"/additionalProperties", na, nptr+"/additionalProperties", path+"{}")
	}
	return nil
}

func (d *schemaDiffer) compareComposition(o *jsonSchema, optr string, n *jsonSchema, nptr string, path string) error {
	for i, kw := range []string{"allOf", "anyOf", "oneOf"} {
		ol, nl := [][]*jsonSchema{o.AllOf, o.AnyOf, o.OneOf}[i], [][]*jsonSchema{n.AllOf, n.AnyOf, n.OneOf}[i]
		if len(ol) != len(nl) {
			d.emitE("composition-changed", path, nptr, fmt.Sprintf("%s of %d schemas became %d", kw, len(ol), len(nl)), both)
			continue
		}
		for j := range ol {
			at := "/" + kw + "/" + strconv.Itoa(j)
			if err := d.compare(ol[j], optr+at, nl[j], nptr+at, fmt.Sprintf("%s<%s %d>", path, kw, j)); err != nil {
				return err
			}
		}
	}
	return nil
}

// typeSet returns the types a schema allows; empty means any.
func typeSet(types []string) map[string]bool {
	m := make(map[string]bool, len(types))
	for _, t := range types {
		m[t] = true
	}
	return m
}

// allows reports whether a type set admits values of type t.
func allows(set map[string]bool, t string) bool {
	return len(set) == 0 || set[t] || (t == "integer" && set["number"])
}

// covers reports whether every value of types b is one of types a.
func covers(a, b map[string]bool) bool {
	if len(a) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for t := range b {
		if !allows(a, t) {
			return false
		}
	}
	return true
}

func sameTypes(a, b map[string]bool) bool { return covers(a, b) && covers(b, a) }

func typeText(types []string) string {
	switch len(types) {
	case 0:
		return "any"
	case 1:
		return types[0]
	}
	return "[" + strings.Join(types, ", ") + "]"
}

func canonical(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func valueSet(values []any) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[canonical(v)] = true
	}
	return m
}

func enumText(values []any) string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = canonical(v)
	}
	sort.Strings(out)
	return "[" + strings.Join(out, ", ") + "]"
}

func stringSet(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, e := range s {
		m[e] = true
	}
	return m
}
