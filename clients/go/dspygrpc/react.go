package dspygrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// ToolDef is a tool of a ReAct agent: what the LM is told about it, and (for tools this process
// runs) the func that runs it.
type ToolDef struct {
	Spec *pb.ToolSpec
	Func Tool // nil for a server-side builtin
}

// NewTool defines a tool run in this process. Its arguments are the fields of Args (json and desc
// tags as for signatures); the LM's arguments are decoded into an Args before fn is called.
//
//	type AddArgs struct{ A, B int }
//	add := dspygrpc.NewTool("add", "Add two numbers.", func(ctx context.Context, args AddArgs) (any, error) {
//		return args.A + args.B, nil
//	})
func NewTool[Args any](name, description string, fn func(ctx context.Context, args Args) (any, error)) ToolDef {
	fields, _ := fieldsOf(reflect.TypeFor[Args]())
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		name, _ := json.Marshal(f.name)
		schema := jsonSchemaOf(f.typ)
		if f.desc != "" {
			schema["description"] = f.desc
		}
		value, _ := json.Marshal(schema)
		parts = append(parts, string(name)+": "+string(value))
	}
	spec := &pb.ToolSpec{Name: name, Description: description, ArgsJsonSchema: "{" + strings.Join(parts, ", ") + "}"}
	run := func(ctx context.Context, raw map[string]any) (any, error) {
		var args Args
		data, _ := json.Marshal(raw)
		if err := json.Unmarshal(data, &args); err != nil {
			return nil, fmt.Errorf("bad arguments %s: %w", data, err)
		}
		return fn(ctx, args)
	}
	return ToolDef{Spec: spec, Func: run}
}

// BuiltinTool is a tool the server runs from its built-in registry, e.g. BuiltinTool("calculator").
func BuiltinTool(builtin string) ToolDef {
	return ToolDef{Spec: &pb.ToolSpec{Name: builtin, Builtin: builtin}}
}

// WithMaxIters sets a ReAct agent's maximum number of steps (default 20, as in DSPy).
func WithMaxIters(n int) PredictorOption {
	return func(c *predictorConfig) { c.maxIters = n }
}

// ReAct is dspy.ReAct, run inline: each step the agent picks one of tools; tools defined with
// NewTool run here whenever it calls them (Call and Stream use InferenceService.Run). The server
// adds `trajectory` and `reasoning` outputs; give Out fields with those json names to read them.
func ReAct[In, Out any](c *Client, tools []ToolDef, opts ...PredictorOption) *Module[In, Out] {
	var config predictorConfig
	for _, opt := range opts {
		opt(&config)
	}
	predictor, err := predictorSpec[In, Out](config, "reasoning", "trajectory")
	if err != nil {
		return &Module[In, Out]{client: c, err: err}
	}
	react := &pb.ReActModule{Predictor: predictor, MaxIters: int32(config.maxIters)}
	local := map[string]Tool{}
	for _, t := range tools {
		react.Tools = append(react.Tools, t.Spec)
		if t.Func != nil {
			local[t.Spec.GetName()] = t.Func
		}
	}
	spec := &pb.ModuleSpec{Module: &pb.ModuleSpec_React{React: react}}
	return &Module[In, Out]{client: c, spec: spec, tools: local}
}
