package dspygrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// A struct field becomes a signature field:
//
//	type QA struct {
//		Question string   `json:"question" desc:"a trivia question"`
//		Context  []string `json:"context,omitempty"`
//	}
//
// The name is the `json` tag's (else the Go field name), the description the `desc` tag's, and the
// DSPy type follows the Go type: string -> str, bool -> bool, integers -> int, floats -> float,
// []T -> list[T], map[string]T -> dict[str, T], *T -> Optional[T], a struct -> an object type with a
// JSON schema, anything else (any, interfaces) -> Any. An `omitempty` field may be left out, so it
// is Optional too. Fields tagged `json:"-"` are skipped.

type structField struct {
	name     string
	desc     string
	typ      reflect.Type
	required bool // not a pointer and not omitempty: must be among the outputs
}

func fieldsOf(t reflect.Type) ([]structField, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct", t)
	}
	var fields []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, structField{
			name:     name,
			desc:     f.Tag.Get("desc"),
			typ:      f.Type,
			required: f.Type.Kind() != reflect.Pointer && !strings.Contains(","+opts+",", ",omitempty,"),
		})
	}
	return fields, nil
}

// signatureOf builds a structured signature from the In and Out struct types, leaving out the
// output fields named in skipOutputs.
func signatureOf(in, out reflect.Type, instructions *string, skipOutputs ...string) (*pb.Signature, error) {
	sig := &pb.Signature{Instructions: instructions}
	for _, side := range []struct {
		t    reflect.Type
		role pb.FieldRole
	}{{in, pb.FieldRole_FIELD_ROLE_INPUT}, {out, pb.FieldRole_FIELD_ROLE_OUTPUT}} {
		fields, err := fieldsOf(side.t)
		if err != nil {
			return nil, fmt.Errorf("dspygrpc: cannot derive a signature (%v): use WithSignature(\"a, b -> c\")", err)
		}
		if len(fields) == 0 {
			return nil, fmt.Errorf("dspygrpc: %s has no exported fields to use as signature fields", side.t)
		}
		for _, f := range fields {
			if side.role == pb.FieldRole_FIELD_ROLE_OUTPUT && slices.Contains(skipOutputs, f.name) {
				continue
			}
			typ := typeSpecOf(f.typ)
			if !f.required && typ.GetKind() != pb.TypeKind_TYPE_KIND_OPTIONAL {
				typ = &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_OPTIONAL, Args: []*pb.TypeSpec{typ}} // omitempty
			}
			field := &pb.SignatureField{Name: f.name, Role: side.role, Type: typ}
			if f.desc != "" {
				field.Description = &f.desc
			}
			sig.Fields = append(sig.Fields, field)
		}
	}
	return sig, nil
}

var timeType = reflect.TypeFor[time.Time]()

func typeSpecOf(t reflect.Type) *pb.TypeSpec {
	if t == timeType {
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_DATETIME}
	}
	switch t.Kind() {
	case reflect.String:
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_STR}
	case reflect.Bool:
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_BOOL}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_INT}
	case reflect.Float32, reflect.Float64:
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_FLOAT}
	case reflect.Slice, reflect.Array:
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_LIST, Args: []*pb.TypeSpec{typeSpecOf(t.Elem())}}
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_DICT, Args: []*pb.TypeSpec{{Kind: pb.TypeKind_TYPE_KIND_STR}, typeSpecOf(t.Elem())}}
		}
	case reflect.Pointer:
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_OPTIONAL, Args: []*pb.TypeSpec{typeSpecOf(t.Elem())}}
	case reflect.Struct:
		schema, _ := json.Marshal(jsonSchemaOf(t))
		return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_OBJECT, Name: t.Name(), JsonSchema: string(schema)}
	}
	return &pb.TypeSpec{Kind: pb.TypeKind_TYPE_KIND_ANY}
}

// orderedObject is a JSON object that keeps its keys in the order given (a struct's fields' order
// is part of the prompt DSPy renders; encoding/json would sort a map's keys).
type orderedObject struct {
	keys   []string
	values map[string]any
}

func (o *orderedObject) set(key string, value any) {
	if o.values == nil {
		o.values = map[string]any{}
	}
	if _, ok := o.values[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.values[key] = value
}

func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var out bytes.Buffer
	out.WriteByte('{')
	for i, key := range o.keys {
		if i > 0 {
			out.WriteByte(',')
		}
		name, _ := json.Marshal(key)
		value, err := json.Marshal(o.values[key])
		if err != nil {
			return nil, err
		}
		out.Write(name)
		out.WriteByte(':')
		out.Write(value)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// jsonSchemaOf describes a Go type as a JSON schema (for object-typed fields).
func jsonSchemaOf(t reflect.Type) map[string]any {
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": jsonSchemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": jsonSchemaOf(t.Elem())}
	case reflect.Pointer:
		return map[string]any{"anyOf": []any{jsonSchemaOf(t.Elem()), map[string]any{"type": "null"}}}
	case reflect.Struct:
		fields, _ := fieldsOf(t)
		properties := &orderedObject{}
		required := []string{}
		for _, f := range fields {
			property := jsonSchemaOf(f.typ)
			if f.desc != "" {
				property["description"] = f.desc
			}
			properties.set(f.name, property)
			if f.required {
				required = append(required, f.name)
			}
		}
		schema := map[string]any{"type": "object", "properties": properties, "required": required}
		if t.Name() != "" {
			schema["title"] = t.Name()
		}
		return schema
	}
	return map[string]any{}
}
