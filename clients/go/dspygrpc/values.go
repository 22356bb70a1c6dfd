package dspygrpc

import (
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

// toStruct converts inputs (a struct with json tags, a map, anything encoding/json turns into an
// object) into a Struct.
func toStruct(value any, what string) (*structpb.Struct, error) {
	if value == nil {
		return &structpb.Struct{}, nil
	}
	data, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("dspygrpc: %s: %w", what, err)
	}
	var object map[string]any
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("dspygrpc: %s must encode as a JSON object: %w", what, err)
	}
	return structpb.NewStruct(object)
}

// decodeOutputs turns the outputs Struct into an Out, checking that every required field of a
// struct Out is present and that each value has the field's type.
func decodeOutputs[Out any](outputs *structpb.Struct) (Out, error) {
	var result Out
	values := outputs.AsMap()
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
			data, _ := json.Marshal(value)
			if err := json.Unmarshal(data, reflect.New(f.typ).Interface()); err != nil {
				return result, &OutputError{Field: f.name, Err: fmt.Errorf("expected a %s, got %s", f.typ, data)}
			}
		}
	}
	data, err := json.Marshal(values)
	if err != nil {
		return result, err
	}
	if err := json.Unmarshal(data, &result); err != nil {
		return result, &OutputError{Field: "", Err: err}
	}
	return result, nil
}

// jsonValue converts any JSON-encodable value into a Value.
func jsonValue(value any) (*structpb.Value, error) {
	data, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	var decoded any
	if err := json.Unmarshal(data, &decoded); err != nil {
		return nil, err
	}
	return structpb.NewValue(decoded)
}
