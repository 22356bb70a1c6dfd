// Failed calls: every RPC error becomes a DspyGrpcError carrying the server's rich status
// (google.rpc.ErrorInfo reason, BadRequest field violations, RetryInfo delay).
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** gRPC status code names, as the server's documentation spells them. */
export type StatusName =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

const STATUS_NAMES: Record<Code, StatusName> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** One offending request field, e.g. `{ field: "inputs.question", description: "missing" }`. */
export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * A failed RPC.
 *
 *     try { await qa.call({ question: "?" }); }
 *     catch (err) { if (err instanceof DspyGrpcError && err.reason === "PROGRAM_NOT_FOUND") ... }
 */
export class DspyGrpcError extends Error {
  override readonly name = "DspyGrpcError";
  /** The gRPC status code name, e.g. "NOT_FOUND". */
  readonly status: StatusName;
  /** ErrorInfo.reason in UPPER_SNAKE_CASE, e.g. "PROGRAM_NOT_FOUND" ("" when the server sent none). */
  readonly reason: string;
  /** ErrorInfo.domain: "dspy-grpc" for this service's errors. */
  readonly domain: string;
  /** ErrorInfo.metadata, e.g. the adapter and completion of a PARSE_ERROR. */
  readonly metadata: Record<string, string>;
  /** BadRequest field violations. */
  readonly fieldViolations: FieldViolation[];
  /** RetryInfo: milliseconds to wait before retrying, when waiting helps. */
  readonly retryDelayMs?: number;
  /** The server's id for the request; quote it when reporting a problem. */
  readonly requestId?: string;

  constructor(
    /** The gRPC status code (connect's Code enum). */
    readonly code: Code,
    /** The server's message. */
    readonly rawMessage: string,
    details: {
      reason?: string;
      domain?: string;
      metadata?: Record<string, string>;
      fieldViolations?: FieldViolation[];
      retryDelayMs?: number;
      requestId?: string;
    } = {},
    options?: { cause?: unknown },
  ) {
    const status = STATUS_NAMES[code] ?? "UNKNOWN";
    const reasonText = details.reason ? ` [${details.reason}]` : "";
    const violations = (details.fieldViolations ?? []).map((v) => `${v.field}: ${v.description}`).join("; ");
    super(`${status}: ${rawMessage}${reasonText}${violations ? ` (${violations})` : ""}`, options);
    this.status = status;
    this.reason = details.reason ?? "";
    this.domain = details.domain ?? "";
    this.metadata = details.metadata ?? {};
    this.fieldViolations = details.fieldViolations ?? [];
    this.retryDelayMs = details.retryDelayMs;
    this.requestId = details.requestId;
  }

  /** The DspyGrpcError for anything a call threw (a ConnectError, an abort, a network error). */
  static from(error: unknown): DspyGrpcError {
    if (error instanceof DspyGrpcError) return error;
    const connectError = ConnectError.from(error);
    const info = connectError.findDetails(ErrorInfoSchema)[0];
    const fieldViolations = connectError
      .findDetails(BadRequestSchema)
      .flatMap((badRequest) => badRequest.fieldViolations)
      .map((v) => ({ field: v.field, description: v.description }));
    const retry = connectError.findDetails(RetryInfoSchema)[0]?.retryDelay;
    const metadata = info ? { ...info.metadata } : {};
    return new DspyGrpcError(
      connectError.code,
      connectError.rawMessage,
      {
        reason: info?.reason,
        domain: info?.domain,
        metadata,
        fieldViolations,
        retryDelayMs: retry ? Number(retry.seconds) * 1000 + retry.nanos / 1e6 : undefined,
        requestId: metadata["request_id"] ?? connectError.metadata.get("x-request-id") ?? undefined,
      },
      { cause: error },
    );
  }
}

/** Runs a call, turning any failure into a DspyGrpcError. */
export async function rpc<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw DspyGrpcError.from(error);
  }
}

/** Passes a response stream through, turning any failure into a DspyGrpcError. */
export async function* rpcStream<T>(stream: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* stream;
  } catch (error) {
    throw DspyGrpcError.from(error);
  }
}
