package dspygrpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dspy-grpc/dspy-grpc/clients/go/dspygrpc"
	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

type Question struct {
	Question string   `json:"question" desc:"a trivia question"`
	Context  []string `json:"context,omitempty"`
}

type Answer struct {
	Answer     string  `json:"answer"`
	Confidence float64 `json:"confidence" desc:"between 0 and 1"`
}

type Reasoned struct {
	Reasoning string `json:"reasoning"`
	Answer    int    `json:"answer"`
}

func TestSignatureFromStructTags(t *testing.T) {
	spec, err := dspygrpc.Predict[Question, Answer](nil, dspygrpc.WithInstructions("Answer briefly.")).Spec()
	if err != nil {
		t.Fatal(err)
	}
	sig := spec.GetPredict().GetPredictor().GetSignature()
	if sig.GetInstructions() != "Answer briefly." {
		t.Errorf("instructions: %q", sig.GetInstructions())
	}
	want := []struct {
		name string
		role pb.FieldRole
		kind pb.TypeKind
	}{
		{"question", pb.FieldRole_FIELD_ROLE_INPUT, pb.TypeKind_TYPE_KIND_STR},
		{"context", pb.FieldRole_FIELD_ROLE_INPUT, pb.TypeKind_TYPE_KIND_OPTIONAL}, // omitempty
		{"answer", pb.FieldRole_FIELD_ROLE_OUTPUT, pb.TypeKind_TYPE_KIND_STR},
		{"confidence", pb.FieldRole_FIELD_ROLE_OUTPUT, pb.TypeKind_TYPE_KIND_FLOAT},
	}
	if len(sig.GetFields()) != len(want) {
		t.Fatalf("fields: %v", sig.GetFields())
	}
	for i, w := range want {
		f := sig.GetFields()[i]
		if f.GetName() != w.name || f.GetRole() != w.role || f.GetType().GetKind() != w.kind {
			t.Errorf("field %d = %v, want %+v", i, f, w)
		}
	}
	if sig.GetFields()[0].GetDescription() != "a trivia question" {
		t.Errorf("description from the desc tag: %q", sig.GetFields()[0].GetDescription())
	}

	cot, err := dspygrpc.ChainOfThought[Question, Reasoned](nil).Spec()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cot.GetChainOfThought().GetPredictor().GetSignature().GetFields() {
		if f.GetName() == "reasoning" {
			t.Error("ChainOfThought must leave `reasoning` to the server")
		}
	}

	if _, err := dspygrpc.Predict[map[string]any, map[string]any](nil).Spec(); err == nil {
		t.Error("maps carry no field names: a string signature is required")
	}
}

// The typed layer against a real server (skipped without one, like the conformance scenarios).
func TestTypedCallsAgainstServer(t *testing.T) {
	address := os.Getenv(addressEnv)
	if address == "" {
		t.Skip(addressEnv + " is not set")
	}
	client, err := dspygrpc.NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pred, err := dspygrpc.Predict[Question, Answer](client).Call(ctx, Question{Question: "Capital of France?"},
		dspygrpc.WithLM(dspygrpc.Scripted(Answer{Answer: "Paris", Confidence: 0.75})))
	if err != nil || pred.Outputs != (Answer{"Paris", 0.75}) || pred.Usage[0].Model != "dummy" {
		t.Fatalf("Predict = %+v, %v", pred, err)
	}

	cot, err := dspygrpc.ChainOfThought[Question, Reasoned](client).Call(ctx, Question{Question: "2 + 2?"},
		dspygrpc.WithLM(dspygrpc.Scripted(map[string]any{"reasoning": "Add them.", "answer": 4})))
	if err != nil || cot.Outputs != (Reasoned{"Add them.", 4}) {
		t.Fatalf("ChainOfThought = %+v, %v", cot, err)
	}

	// The server says `answer` is text; an Out type that wants a number is told so.
	type Count struct {
		Answer int `json:"answer"`
	}
	_, err = dspygrpc.Predict[Question, Count](client, dspygrpc.WithSignature("question -> answer")).Call(ctx,
		Question{Question: "?"}, dspygrpc.WithLM(dspygrpc.Scripted(map[string]any{"answer": "four"})))
	var outputErr *dspygrpc.OutputError
	if !errors.As(err, &outputErr) || outputErr.Field != "answer" {
		t.Fatalf("want an *OutputError, got %v", err)
	}

	// ReAct: the tool is a Go func with typed arguments, run here when the agent calls it.
	type MultiplyArgs struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	var seen []MultiplyArgs
	multiply := dspygrpc.NewTool("multiply", "Multiply two numbers.", func(_ context.Context, args MultiplyArgs) (any, error) {
		seen = append(seen, args)
		return args.A * args.B, nil
	})
	type Solved struct {
		Answer     int            `json:"answer"`
		Trajectory map[string]any `json:"trajectory"`
	}
	agent := dspygrpc.ReAct[Question, Solved](client, []dspygrpc.ToolDef{multiply}, dspygrpc.WithMaxIters(3))
	solved, err := agent.Call(ctx, Question{Question: "6 times 7?"}, dspygrpc.WithLM(dspygrpc.Scripted(
		map[string]any{"next_thought": "Multiply.", "next_tool_name": "multiply", "next_tool_args": map[string]any{"a": 6, "b": 7}},
		map[string]any{"next_thought": "Done.", "next_tool_name": "finish", "next_tool_args": map[string]any{}},
		map[string]any{"reasoning": "6 * 7 = 42", "answer": 42},
	)))
	if err != nil || solved.Outputs.Answer != 42 || solved.Outputs.Trajectory["observation_0"] != 42.0 || len(seen) != 1 || seen[0] != (MultiplyArgs{6, 7}) {
		t.Fatalf("ReAct = %+v, %v (tool saw %v)", solved, err, seen)
	}

	// Stream: the answer's text as the mock LM streams it, then the typed prediction. The question
	// carries a fresh id: a cached completion streams no deltas.
	var text string
	var final *dspygrpc.Prediction[Answer]
	question := Question{Question: fmt.Sprintf("go stream %d", time.Now().UnixNano())}
	qa := dspygrpc.Predict[Question, Answer](client, dspygrpc.WithSignature("question -> answer, confidence: float"))
	for event, err := range qa.Stream(ctx, question, dspygrpc.WithLM(dspygrpc.Model("mock"))) {
		if err != nil {
			t.Fatal(err)
		}
		if d := event.Raw.GetFieldDelta(); d != nil && d.GetField() == "answer" {
			text += d.GetText()
		}
		if event.Prediction != nil {
			final = event.Prediction
		}
	}
	if final == nil || final.Outputs.Answer != "mock answer for: "+question.Question || text != final.Outputs.Answer {
		t.Fatalf("Stream: text %q, prediction %+v", text, final)
	}

	_, err = dspygrpc.Program[Question, Answer](client, "conf-missing-program").Call(ctx, Question{Question: "?"})
	var e *dspygrpc.Error
	if !errors.As(err, &e) || e.CodeName() != "NOT_FOUND" || e.Reason != "PROGRAM_NOT_FOUND" {
		t.Fatalf("want NOT_FOUND / PROGRAM_NOT_FOUND, got %v", err)
	}
}

func TestQueryUsageAgainstServer(t *testing.T) {
	address := os.Getenv(addressEnv)
	if address == "" {
		t.Skip(addressEnv + " is not set")
	}
	client, err := dspygrpc.NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := dspygrpc.Predict[Question, Answer](client).Call(ctx, Question{Question: "Usage?"},
		dspygrpc.WithLM(dspygrpc.Model("dummy"))); err != nil {
		t.Fatal(err)
	}
	report, err := client.QueryUsage(ctx, dspygrpc.UsageQuery{
		Models:  []string{"dummy"},
		Period:  pb.UsagePeriod_USAGE_PERIOD_DAY,
		GroupBy: []pb.UsageDimension{pb.UsageDimension_USAGE_DIMENSION_MODEL},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Rows) == 0 {
		t.Fatal("the call just made is not in the usage report")
	}
	calls := int64(0)
	for _, row := range report.Rows {
		if row.GetModel() != "dummy" || len(row.GetPeriod()) != len("2006-01-02") {
			t.Errorf("row %v: want model dummy, one row per day", row)
		}
		calls += row.GetCalls() + row.GetCacheHits()
	}
	if calls < 1 || report.Total.GetCalls()+report.Total.GetCacheHits() != calls {
		t.Errorf("calls %d, total %v", calls, report.Total)
	}

	_, err = client.QueryUsage(ctx, dspygrpc.UsageQuery{Start: "yesterday"})
	var failure *dspygrpc.Error
	if !errors.As(err, &failure) || len(failure.FieldViolations) != 1 || failure.FieldViolations[0].Field != "start_day" {
		t.Errorf("bad start day: %v", err)
	}
}

// Values keep their identity: a struct's fields arrive in declaration order, integers as integers
// (tests/parity/test_exact_values_parity.py shows these bytes are DSPy 3.4.1's for the same values).
func TestValuesKeepTheirOrderAndIntegers(t *testing.T) {
	address := os.Getenv(addressEnv)
	if address == "" {
		t.Skip(addressEnv + " is not set")
	}
	client, err := dspygrpc.NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type Data struct {
		Zeta  int     `json:"zeta"`
		Alpha float64 `json:"alpha"`
		Mid   []any   `json:"mid"`
	}
	type In struct {
		Data  Data `json:"data"`
		Count int  `json:"count"`
	}
	type Demo struct {
		Data    json.RawMessage `json:"data"`
		Count   int             `json:"count"`
		Summary json.RawMessage `json:"summary"`
	}
	type Out struct {
		Summary json.RawMessage `json:"summary"`
	}
	module := dspygrpc.Predict[In, Out](client,
		dspygrpc.WithSignature("data: dict[str, Any], count -> summary: dict[str, Any]"),
		dspygrpc.WithDemos(Demo{Data: json.RawMessage(`{"y": 2.5, "x": 1}`), Count: 2, Summary: json.RawMessage(`{"b": 1, "a": 0.5}`)}))
	inputs := In{Data: Data{Zeta: 1, Alpha: 2.5, Mid: []any{3, map[string]any{"y": 1.5}}}, Count: 1}
	rendered, err := module.RenderPrompt(ctx, inputs)
	if err != nil {
		t.Fatal(err)
	}
	messages := rendered.GetMessages()
	for i, want := range map[int]string{
		1: "[[ ## data ## ]]\n{\"y\": 2.5, \"x\": 1}\n\n[[ ## count ## ]]\n2",
		2: "[[ ## summary ## ]]\n{\"b\": 1, \"a\": 0.5}",
		3: "[[ ## data ## ]]\n{\"zeta\": 1, \"alpha\": 2.5, \"mid\": [3, {\"y\": 1.5}]}\n\n[[ ## count ## ]]\n1\n\n",
	} {
		if !strings.Contains(messages[i].GetContent(), want) {
			t.Errorf("message %d: %q lacks %q", i, messages[i].GetContent(), want)
		}
	}
	pred, err := module.Call(ctx, inputs, dspygrpc.WithLM(dspygrpc.Scripted(
		map[string]any{"summary": json.RawMessage(`{"zeta": 1, "alpha": 0.5}`)})))
	if err != nil || string(pred.Outputs.Summary) != `{"zeta": 1, "alpha": 0.5}` {
		t.Fatalf("outputs keep their order: %s, %v", pred.Outputs.Summary, err)
	}
}
