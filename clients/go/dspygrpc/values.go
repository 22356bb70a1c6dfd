package dspygrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/types/known/structpb"
)

// OutputError says that the server's outputs do not fit the Out type: a field is missing or has a
// value of another type.
type OutputError struct {
	// Field is the output field, e.g. "answer".
	Field string
	// Err says what is wrong.
	Err error
}

func (e *OutputError) Error() string { return fmt.Sprintf("dspygrpc: output %q: %v", e.Field, e.Err) }
func (e *OutputError) Unwrap() error { return e.Err }

// Values travel in their exact form, JSON text (InputsJson, DataJson, OutputsJson, ArgsJson, ...),
// beside the convenient google.protobuf.Struct, whose numbers are doubles and whose objects are
// unordered. The client sends and reads the JSON text: a struct's fields keep their declaration
// order and integers stay integers. encoding/json writes map keys sorted and a whole float64 such as
// 1.0 as 1; pass a json.RawMessage to send exactly the text you want.

// toJSONObject encodes inputs (a struct with json tags, a map, a json.RawMessage, anything
// encoding/json turns into an object) as JSON object text.
func toJSONObject(value any, what string) (string, error) {
	if value == nil {
		return "{}", nil
	}
	data, err := json.Marshal(value)
	if err != nil {
		return "", fmt.Errorf("dspygrpc: %s: %w", what, err)
	}
	trimmed := bytes.TrimSpace(data)
	if bytes.Equal(trimmed, []byte("null")) {
		return "{}", nil
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", fmt.Errorf("dspygrpc: %s must encode as a JSON object, got %s", what, truncate(trimmed))
	}
	return string(trimmed), nil
}

func truncate(data []byte) string {
	if len(data) > 40 {
		return string(data[:40]) + "..."
	}
	return string(data)
}

// exactJSON is a response's values: its JSON text when the server sent it, else the Struct's.
func exactJSON(text string, fallback *structpb.Struct) []byte {
	if text != "" {
		return []byte(text)
	}
	data, _ := json.Marshal(fallback.AsMap())
	return data
}

// decodeOutputs turns the outputs (JSON object text) into an Out, checking that every required
// field of a struct Out is present and that each value has the field's type.
func decodeOutputs[Out any](outputs []byte) (Out, error) {
	var result Out
	var values map[string]json.RawMessage
	if err := json.Unmarshal(outputs, &values); err != nil {
		return result, &OutputError{Field: "", Err: err}
	}
	if fields, err := fieldsOf(reflect.TypeOf(result)); err == nil {
		for _, f := range fields {
			if _, ok := values[f.name]; !ok && f.required {
				return result, &OutputError{Field: f.name, Err: fmt.Errorf("missing (expected a %s)", f.typ)}
			}
		}
		for _, f := range fields {
			value, ok := values[f.name]
			if !ok {
				continue
			}
			if err := json.Unmarshal(value, reflect.New(f.typ).Interface()); err != nil {
				return result, &OutputError{Field: f.name, Err: fmt.Errorf("expected a %s, got %s", f.typ, value)}
			}
		}
	}
	if err := json.Unmarshal(outputs, &result); err != nil {
		return result, &OutputError{Field: "", Err: err}
	}
	return result, nil
}
