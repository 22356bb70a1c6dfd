package dspygrpc

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call, with the server's rich status decoded:
//
//	var e *dspygrpc.Error
//	if errors.As(err, &e) && e.Reason == "PROGRAM_NOT_FOUND" { ... }
//
// status.Code(err) and status.FromError(err) work on it too.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the server's message.
	Message string
	// Reason is ErrorInfo.reason in UPPER_SNAKE_CASE, e.g. "PROGRAM_NOT_FOUND" ("" when none was sent).
	Reason string
	// Domain is ErrorInfo.domain: "dspy-grpc" for this service's errors.
	Domain string
	// Metadata is ErrorInfo.metadata, e.g. the adapter and completion of a PARSE_ERROR.
	Metadata map[string]string
	// FieldViolations are the BadRequest detail's offending request fields.
	FieldViolations []FieldViolation
	// RetryDelay is RetryInfo's suggested wait (0 when the server suggests none).
	RetryDelay time.Duration
	// RequestID is the server's id for the request; quote it when reporting a problem.
	RequestID string

	status *status.Status
}

// FieldViolation names one offending request field, e.g. "inputs.question".
type FieldViolation struct {
	Field       string
	Description string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", strings.ToUpper(codeName(e.Code)), e.Message)
	if e.Reason != "" {
		fmt.Fprintf(&b, " [%s]", e.Reason)
	}
	for i, v := range e.FieldViolations {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", v.Field, v.Description)
		if i == len(e.FieldViolations)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// GRPCStatus makes status.FromError and status.Code see the original status.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// CodeName is the status code as the server's documentation spells it, e.g. "NOT_FOUND".
func (e *Error) CodeName() string { return codeName(e.Code) }

// FieldNames lists the offending fields.
func (e *Error) FieldNames() []string {
	names := make([]string, len(e.FieldViolations))
	for i, v := range e.FieldViolations {
		names[i] = v.Field
	}
	return names
}

func codeName(c codes.Code) string {
	switch c {
	case codes.Canceled:
		return "CANCELLED"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	case codes.Unimplemented:
		return "UNIMPLEMENTED"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.DataLoss:
		return "DATA_LOSS"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	default:
		return strings.ToUpper(c.String())
	}
}

// asError turns a failed call's error into an *Error (nil stays nil; non-gRPC errors pass through).
func asError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain = d.GetReason(), d.GetDomain()
			for k, v := range d.GetMetadata() {
				e.Metadata[k] = v
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryDelay = d.GetRetryDelay().AsDuration()
		}
	}
	e.RequestID = e.Metadata["request_id"]
	return e
}
