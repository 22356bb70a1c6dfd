package dspygrpc_test

// Runs the language-neutral scenarios in tests/conformance/scenarios through this package's typed
// layer (see tests/conformance/scenarios.py for the file format) against the server at
// $DSPY_GRPC_CONFORMANCE_ADDR; skipped when it is unset.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dspy-grpc/dspy-grpc/clients/go/dspygrpc"
	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

const addressEnv = "DSPY_GRPC_CONFORMANCE_ADDR"

var streamingRPCs = map[string]bool{
	"InferenceService/StreamPredict": true,
	"CorpusService/AppendDocuments":  true,
	"InferenceService/BatchPredict":  true,
	"InferenceService/Run":           true,
}

var scenarioDir = filepath.Join("..", "..", "..", "tests", "conformance", "scenarios")

type step struct {
	RPC     string          `json:"rpc"`
	Request json.RawMessage `json:"request"`
	Expect  struct {
		Response any `json:"response"`
		Error    *struct {
			Code            string   `json:"code"`
			Reason          *string  `json:"reason"`
			FieldViolations []string `json:"fieldViolations"`
		} `json:"error"`
	} `json:"expect"`
}

type scenario struct {
	Name  string
	Steps []step `json:"steps"`
}

func loadScenarios(t *testing.T, runID string) []scenario {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(scenarioDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios in %s: %v", scenarioDir, err)
	}
	sort.Strings(paths)
	var scenarios []scenario
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var s scenario
		if err := json.Unmarshal([]byte(strings.ReplaceAll(string(data), "{run}", runID)), &s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		s.Name = strings.TrimSuffix(filepath.Base(path), ".json")
		scenarios = append(scenarios, s)
	}
	return scenarios
}

// matches reports where actual differs from expected (subset match; {"$contains": s} matches
// strings containing s).
func matches(expected, actual any, path string) []string {
	switch want := expected.(type) {
	case map[string]any:
		if needle, ok := want["$contains"].(string); ok && len(want) == 1 {
			if got, ok := actual.(string); ok && strings.Contains(got, needle) {
				return nil
			}
			return []string{fmt.Sprintf("%s: expected a string containing %q, got %v", path, needle, actual)}
		}
		got, ok := actual.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: expected an object, got %v", path, actual)}
		}
		var problems []string
		for key, value := range want {
			if _, ok := got[key]; !ok {
				problems = append(problems, fmt.Sprintf("%s.%s: missing", path, key))
			} else {
				problems = append(problems, matches(value, got[key], path+"."+key)...)
			}
		}
		return problems
	case []any:
		got, ok := actual.([]any)
		if !ok || len(got) != len(want) {
			return []string{fmt.Sprintf("%s: expected %d items, got %v", path, len(want), actual)}
		}
		var problems []string
		for i := range want {
			problems = append(problems, matches(want[i], got[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return problems
	default:
		if reflect.DeepEqual(expected, actual) {
			return nil
		}
		return []string{fmt.Sprintf("%s: expected %v, got %v", path, expected, actual)}
	}
}

type values = map[string]any

// inputsOf is a request's inputs: its exact form (InputsJson; numbers kept as written) when given,
// else the Struct.
func inputsOf(text string, fallback interface{ AsMap() map[string]any }) values {
	if text == "" {
		return fallback.AsMap()
	}
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.UseNumber()
	var out values
	if err := decoder.Decode(&out); err != nil {
		panic(err)
	}
	return out
}

// conformanceTools are the conformance tools, as Go funcs.
var conformanceTools = map[string]dspygrpc.Tool{
	"add": func(_ context.Context, args map[string]any) (any, error) {
		a, _ := args["a"].(float64)
		b, _ := args["b"].(float64)
		return a + b, nil
	},
	"fail": func(context.Context, map[string]any) (any, error) {
		return nil, errors.New("failed on purpose")
	},
}

// summarizeStream builds the stream summary of tests/conformance/scenarios.py.
func summarizeStream(events iter.Seq2[*dspygrpc.Event[values], error]) (any, error) {
	fieldText := map[string]any{}
	toolCalls := []any{}
	calls := map[string]map[string]any{}
	var prediction any
	for event, err := range events {
		if err != nil {
			return nil, err
		}
		raw := event.Raw
		switch {
		case raw.GetFieldDelta() != nil:
			d := raw.GetFieldDelta()
			text, _ := fieldText[d.GetField()].(string)
			fieldText[d.GetField()] = text + d.GetText()
		case raw.GetToolCallStarted() != nil:
			started := raw.GetToolCallStarted()
			call := map[string]any{"tool": started.GetTool(), "args": started.GetArgs().AsMap()}
			calls[started.GetCallId()] = call
			toolCalls = append(toolCalls, call)
		case raw.GetToolCallFinished() != nil:
			finished := raw.GetToolCallFinished()
			call, ok := calls[finished.GetCallId()]
			if !ok {
				call = map[string]any{"tool": finished.GetTool()}
			}
			call["observation"] = finished.GetObservation().AsInterface()
			if finished.GetError() != "" {
				call["error"] = finished.GetError()
			}
		case event.Prediction != nil:
			prediction = protoJSON(event.Prediction.Raw)
		}
	}
	return map[string]any{"fieldText": fieldText, "toolCalls": toolCalls, "prediction": prediction}, nil
}

// protoJSON is a message in proto JSON form, decoded into maps and slices.
func protoJSON(m proto.Message) any {
	data, err := protojson.Marshal(m)
	if err != nil {
		return err.Error()
	}
	var decoded any
	_ = json.Unmarshal(data, &decoded)
	return decoded
}

// callStreamingStep runs a streaming step through the typed layer and returns its summary.
func callStreamingStep(ctx context.Context, client *dspygrpc.Client, s step) (any, error) {
	switch s.RPC {
	case "InferenceService/StreamPredict":
		request := &pb.StreamPredictRequest{}
		if err := protojson.Unmarshal(s.Request, request); err != nil {
			return nil, err
		}
		opts := []dspygrpc.CallOption{dspygrpc.WithLM(request.GetLm())}
		if request.GetIncludeTrace() {
			opts = append(opts, dspygrpc.WithTrace())
		}
		module := moduleFor(client, request.GetProgram(), request.GetModule())
		return summarizeStream(module.Stream(ctx, inputsOf(request.GetInputsJson(), request.GetInputs()), opts...))
	case "InferenceService/Run":
		start := &pb.RunStart{}
		if err := protojson.Unmarshal(s.Request, start); err != nil {
			return nil, err
		}
		request := start.GetRequest()
		tools := map[string]dspygrpc.Tool{}
		for _, name := range start.GetTools() {
			tools[name] = conformanceTools[name]
		}
		opts := []dspygrpc.CallOption{dspygrpc.WithLM(request.GetLm()), dspygrpc.WithTools(tools)}
		if request.GetIncludeTrace() {
			opts = append(opts, dspygrpc.WithTrace())
		}
		module := moduleFor(client, request.GetProgram(), request.GetModule())
		return summarizeStream(module.Stream(ctx, inputsOf(request.GetInputsJson(), request.GetInputs()), opts...))
	case "InferenceService/BatchPredict":
		request := &pb.BatchPredictRequest{}
		if err := protojson.Unmarshal(s.Request, request); err != nil {
			return nil, err
		}
		inputs := make([]values, len(request.GetInputs()))
		for i, in := range request.GetInputs() {
			inputs[i] = in.AsMap()
		}
		opts := []dspygrpc.CallOption{dspygrpc.WithLM(request.GetLm()), dspygrpc.WithMaxConcurrency(int(request.GetMaxConcurrency()))}
		module := moduleFor(client, request.GetProgram(), request.GetModule())
		var items []map[string]any
		for item, err := range module.Batch(ctx, inputs, opts...) {
			if err != nil {
				return nil, err
			}
			var e *dspygrpc.Error
			switch {
			case item.Prediction != nil:
				items = append(items, map[string]any{"index": float64(item.Index), "prediction": protoJSON(item.Prediction.Raw)})
			case errors.As(item.Err, &e):
				fields := []any{}
				for _, f := range e.FieldNames() {
					fields = append(fields, f)
				}
				items = append(items, map[string]any{"index": float64(item.Index), "error": map[string]any{
					"code": e.CodeName(), "reason": e.Reason, "fieldViolations": fields,
				}})
			default:
				return nil, item.Err
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i]["index"].(float64) < items[j]["index"].(float64) })
		list := make([]any, len(items))
		for i, item := range items {
			list[i] = item
		}
		return map[string]any{"items": list}, nil
	case "CorpusService/AppendDocuments":
		request := &pb.AppendDocumentsRequest{}
		if err := protojson.Unmarshal(s.Request, request); err != nil {
			return nil, err
		}
		stream, err := client.Corpora().AppendDocuments(ctx)
		if err != nil {
			return nil, err
		}
		if err := stream.Send(request); err != nil {
			return nil, err
		}
		response, err := stream.CloseAndRecv()
		if err != nil {
			return nil, err
		}
		return protoJSON(response), nil
	}
	return nil, fmt.Errorf("no runner for %s", s.RPC)
}

func moduleFor(client *dspygrpc.Client, program string, module *pb.ModuleSpec) *dspygrpc.Module[values, values] {
	if program != "" {
		return dspygrpc.Program[values, values](client, program)
	}
	return dspygrpc.FromSpec[values, values](client, module)
}

// callStep makes one step's call through the typed layer and returns the response message.
func callStep(ctx context.Context, client *dspygrpc.Client, s step) (proto.Message, error) {
	parse := func(m proto.Message) error { return protojson.Unmarshal(s.Request, m) }
	switch s.RPC {
	case "InferenceService/Predict":
		request := &pb.PredictRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		opts := []dspygrpc.CallOption{dspygrpc.WithLM(request.GetLm())}
		if request.GetIncludeTrace() {
			opts = append(opts, dspygrpc.WithTrace())
		}
		prediction, err := moduleFor(client, request.GetProgram(), request.GetModule()).Call(ctx, inputsOf(request.GetInputsJson(), request.GetInputs()), opts...)
		if err != nil {
			return nil, err
		}
		return &pb.PredictResponse{Prediction: prediction.Raw}, nil
	case "InferenceService/RenderPrompt":
		request := &pb.RenderPromptRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		return moduleFor(client, request.GetProgram(), request.GetModule()).RenderPrompt(ctx, inputsOf(request.GetInputsJson(), request.GetInputs()),
			dspygrpc.ForPredictor(request.GetPredictor()), dspygrpc.UsingAdapter(request.GetAdapter()))
	case "InferenceService/ParseCompletion":
		request := &pb.ParseCompletionRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		parsed, err := moduleFor(client, request.GetProgram(), request.GetModule()).ParseCompletion(ctx, request.GetCompletion(),
			dspygrpc.ForPredictor(request.GetPredictor()), dspygrpc.UsingAdapter(request.GetAdapter()))
		if err != nil {
			return nil, err
		}
		return parsed.Raw, nil
	case "ProgramService/CreateProgram":
		request := &pb.CreateProgramRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		return client.CreateProgram(ctx, request.GetProgramId(), request.GetProgram().GetModule(), request.GetProgram())
	case "ProgramService/GetProgram":
		request := &pb.GetProgramRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		return client.GetProgram(ctx, request.GetName())
	case "ProgramService/UpdateProgram":
		request := &pb.UpdateProgramRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		return client.UpdateProgram(ctx, request.GetProgram(), request.GetUpdateMask().GetPaths()...)
	case "ProgramService/DeleteProgram":
		request := &pb.DeleteProgramRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		return &pb.DeleteProgramRequest{}, client.DeleteProgram(ctx, request.GetName(), request.GetEtag())
	case "ProgramService/ListProgramRevisions":
		request := &pb.ListProgramRevisionsRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		response := &pb.ListProgramRevisionsResponse{}
		for program, err := range client.ListProgramRevisions(ctx, request.GetName()) {
			if err != nil {
				return nil, err
			}
			response.Programs = append(response.Programs, program)
		}
		return response, nil
	case "CorpusService/CreateCorpus":
		request := &pb.CreateCorpusRequest{}
		if err := parse(request); err != nil {
			return nil, err
		}
		return client.Corpora().CreateCorpus(ctx, request)
	}
	return nil, fmt.Errorf("no runner for %s", s.RPC)
}

func runScenario(ctx context.Context, client *dspygrpc.Client, sc scenario) []string {
	var problems []string
	for index, s := range sc.Steps {
		where := fmt.Sprintf("step %d (%s)", index, s.RPC)
		var got any
		var err error
		if streamingRPCs[s.RPC] {
			got, err = callStreamingStep(ctx, client, s)
		} else {
			var response proto.Message
			if response, err = callStep(ctx, client, s); err == nil {
				got = protoJSON(response)
			}
		}
		want := s.Expect.Error
		if err != nil {
			var e *dspygrpc.Error
			if !errors.As(err, &e) || want == nil {
				return append(problems, fmt.Sprintf("%s: unexpected error %v", where, err))
			}
			if e.CodeName() != want.Code {
				problems = append(problems, fmt.Sprintf("%s: code: expected %s, got %s", where, want.Code, e.CodeName()))
			}
			if want.Reason != nil && e.Reason != *want.Reason {
				problems = append(problems, fmt.Sprintf("%s: reason: expected %s, got %q", where, *want.Reason, e.Reason))
			}
			for _, field := range want.FieldViolations {
				if !slices.Contains(e.FieldNames(), field) {
					problems = append(problems, fmt.Sprintf("%s: fieldViolations: %s not among %v", where, field, e.FieldNames()))
				}
			}
			continue
		}
		if want != nil {
			problems = append(problems, fmt.Sprintf("%s: expected %s, got a response", where, want.Code))
			continue
		}
		if s.Expect.Response == nil {
			continue
		}
		for _, p := range matches(s.Expect.Response, got, "response") {
			problems = append(problems, where+": "+p)
		}
	}
	return problems
}

func TestConformance(t *testing.T) {
	address := os.Getenv(addressEnv)
	if address == "" {
		t.Skip(addressEnv + " is not set (python -m tests.conformance.serve starts a server)")
	}
	client, err := dspygrpc.NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	for _, sc := range loadScenarios(t, "go"+hex.EncodeToString(runID)) {
		t.Run(sc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if problems := runScenario(ctx, client, sc); len(problems) > 0 {
				t.Error(strings.Join(problems, "\n"))
			}
		})
	}
}
