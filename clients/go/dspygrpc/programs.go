package dspygrpc

import (
	"context"
	"iter"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// CreateProgram stores spec as "programs/{id}" (its first revision, r0001). The program message may
// carry a display name, description and labels; its module is replaced by spec. Fails with
// ALREADY_EXISTS (reason PROGRAM_EXISTS) if the id is taken.
//
//	spec, err := dspygrpc.Predict[QA, Answer](client).Spec()
//	program, err := client.CreateProgram(ctx, "qa", spec, nil)
func (c *Client) CreateProgram(ctx context.Context, id string, spec *pb.ModuleSpec, program *pb.Program) (*pb.Program, error) {
	p := &pb.Program{}
	if program != nil {
		p.DisplayName, p.Description, p.Labels = program.GetDisplayName(), program.GetDescription(), program.GetLabels()
	}
	p.Module = spec
	request := &pb.CreateProgramRequest{ProgramId: strings.TrimPrefix(id, "programs/"), Program: p}
	response, err := c.programs.CreateProgram(ctx, request)
	return response, asError(err)
}

// GetProgram returns a program at its newest revision, or at the revision named with "@".
func (c *Client) GetProgram(ctx context.Context, name string) (*pb.Program, error) {
	response, err := c.programs.GetProgram(ctx, &pb.GetProgramRequest{Name: ProgramName(name)})
	return response, asError(err)
}

// UpdateProgram stores a new revision of program (its Name set) with the fields in paths replaced
// (display_name, description, labels, module; none means all four). A non-empty program.Etag must
// match the newest revision, else ABORTED with reason ETAG_MISMATCH.
func (c *Client) UpdateProgram(ctx context.Context, program *pb.Program, paths ...string) (*pb.Program, error) {
	request := &pb.UpdateProgramRequest{Program: program, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
	response, err := c.programs.UpdateProgram(ctx, request)
	return response, asError(err)
}

// DeleteProgram deletes a program and all its revisions; a non-empty etag must match.
func (c *Client) DeleteProgram(ctx context.Context, name, etag string) error {
	_, err := c.programs.DeleteProgram(ctx, &pb.DeleteProgramRequest{Name: ProgramName(name), Etag: etag})
	return asError(err)
}

// ListPrograms yields every program (newest revision each) in id order, fetching pages as needed.
func (c *Client) ListPrograms(ctx context.Context) iter.Seq2[*pb.Program, error] {
	return pages(func(token string) ([]*pb.Program, string, error) {
		page, err := c.programs.ListPrograms(ctx, &pb.ListProgramsRequest{PageToken: token})
		return page.GetPrograms(), page.GetNextPageToken(), asError(err)
	})
}

// ListProgramRevisions yields a program's revisions, newest first.
func (c *Client) ListProgramRevisions(ctx context.Context, name string) iter.Seq2[*pb.Program, error] {
	return pages(func(token string) ([]*pb.Program, string, error) {
		page, err := c.programs.ListProgramRevisions(ctx, &pb.ListProgramRevisionsRequest{Name: ProgramName(name), PageToken: token})
		return page.GetPrograms(), page.GetNextPageToken(), asError(err)
	})
}

func pages[T any](fetch func(token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		token := ""
		for {
			items, next, err := fetch(token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range items {
				if !yield(item, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			token = next
		}
	}
}
