// The client: one gRPC connection to a dspy-grpc server, with handles for modules and stored programs.
//
//   const client = new DspyClient("127.0.0.1:50051");
//   const qa = client.predict("question -> answer");
//   const pred = await qa.call({ question: "What is the capital of France?" }, { lm: "dummy" });
//   console.log(pred.outputs.answer);
import { create, type JsonObject } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type CallOptions as ConnectCallOptions, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { InferenceService } from "./gen/dspy_grpc/v1/inference_pb.js";
import type { ModuleSpec } from "./gen/dspy_grpc/v1/module_pb.js";
import {
  CreateProgramRequestSchema,
  DeleteProgramRequestSchema,
  GetProgramRequestSchema,
  ListProgramRevisionsRequestSchema,
  ListProgramsRequestSchema,
  ProgramSchema,
  ProgramService,
  UpdateProgramRequestSchema,
} from "./gen/dspy_grpc/v1/program_pb.js";
import { BudgetService, DeleteBudgetRequestSchema, GetBudgetRequestSchema, ListBudgetsRequestSchema } from "./gen/dspy_grpc/v1/budget_pb.js";
import {
  Budget,
  budgetName,
  createBudgetRequest,
  updateBudgetRequest,
  type BudgetPeriodName,
  type BudgetSubject,
} from "./budgets.js";
import { rpc } from "./errors.js";
import {
  Module,
  moduleSpec,
  reactSpec,
  type Caller,
  type PredictorOptions,
  type ReActOptions,
  type RpcOptions,
} from "./module.js";
import { Program } from "./results.js";
import { signature, withReasoning, type Inputs, type Outputs, type Signature } from "./signature.js";

/** The address `make serve` listens on. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";

export interface ClientOptions {
  /** Default deadline for every call, in milliseconds (none by default). */
  timeoutMs?: number;
  /** Metadata sent with every call. */
  headers?: Record<string, string>;
  /** A connect Transport to use instead of a plaintext gRPC connection to `address`. */
  transport?: Transport;
}

/** What a stored program is made of: an inline module, or its spec. */
export type ModuleLike = Module<object, object> | ModuleSpec;

/** Descriptive fields of a stored program. */
export interface ProgramFields {
  displayName?: string;
  description?: string;
  labels?: Record<string, string>;
}

function programName(nameOrId: string): string {
  return nameOrId.startsWith("programs/") ? nameOrId : `programs/${nameOrId}`;
}

function specOf(module: ModuleLike): ModuleSpec {
  if (module instanceof Module) {
    if (!module.spec) throw new Error("a stored program cannot be stored again: pass an inline module");
    return module.spec;
  }
  return module;
}

export class DspyClient implements Caller {
  /** The generated InferenceService client, for calls this layer does not wrap. */
  readonly inference: Client<typeof InferenceService>;
  /** The generated ProgramService client. */
  readonly programs: Client<typeof ProgramService>;
  /** The generated BudgetService client. */
  readonly budgets: Client<typeof BudgetService>;
  private readonly sessions?: Http2SessionManager;

  /**
   * @param address "host:port" (plaintext gRPC), or a URL ("http://host:port", "https://host").
   */
  constructor(
    address: string = DEFAULT_ADDRESS,
    private readonly options: ClientOptions = {},
  ) {
    let transport = options.transport;
    if (!transport) {
      const baseUrl = /^[a-z]+:\/\//.test(address) ? address : `http://${address}`;
      this.sessions = new Http2SessionManager(baseUrl);
      transport = createGrpcTransport({ baseUrl, sessionManager: this.sessions });
    }
    this.inference = createClient(InferenceService, transport);
    this.programs = createClient(ProgramService, transport);
    this.budgets = createClient(BudgetService, transport);
  }

  /** Closes the connection (calls in flight fail). */
  close(): void {
    this.sessions?.abort();
  }

  /** @internal Connect call options: the client's defaults overlaid with the call's. */
  callOptions(options: RpcOptions = {}): ConnectCallOptions {
    return {
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
      signal: options.signal,
      headers: { ...this.options.headers, ...options.headers },
    };
  }

  /** `dspy.Predict(signature)`, run inline. */
  predict<I extends object = Inputs, O extends object = Outputs>(
    sig: Signature<I, O> | string,
    options: PredictorOptions<I, O> = {},
  ): Module<I, O> {
    const typed = typeof sig === "string" ? signature<I, O>(sig) : sig;
    return new Module(
      this,
      { case: "module", value: moduleSpec("predict", typed, options) },
      (outputs) => typed.parseOutputs(outputs),
    );
  }

  /** `dspy.ChainOfThought(signature)`, run inline: the outputs gain `reasoning`. */
  chainOfThought<I extends object = Inputs, O extends object = Outputs>(
    sig: Signature<I, O> | string,
    options: PredictorOptions<I, O> = {},
  ): Module<I, { reasoning: string } & O> {
    const typed = typeof sig === "string" ? signature<I, O>(sig) : sig;
    const checked = withReasoning(typed);
    return new Module(
      this,
      { case: "module", value: moduleSpec("chainOfThought", typed, options) },
      (outputs) => checked.parseOutputs(outputs),
    );
  }

  /**
   * `dspy.ReAct(signature, tools)`, run inline. Tools defined with `tool(...)` run here, as async
   * functions, whenever the agent calls them; the outputs gain `trajectory` and `reasoning`.
   *
   *     const agent = client.react("question -> answer", {
   *       tools: { add: tool("Add two numbers.", { a: t.int(), b: t.int() }, ({ a, b }) => a + b) },
   *     });
   *     const pred = await agent.call({ question: "What is 19 + 23?" }, { lm: "gpt-4o-mini" });
   */
  react<I extends object = Inputs, O extends object = Outputs>(
    sig: Signature<I, O> | string,
    options: ReActOptions<I, O>,
  ): Module<I, { trajectory: JsonObject; reasoning: string } & O> {
    const typed = typeof sig === "string" ? signature<I, O>(sig) : sig;
    const checked = withReasoning(typed);
    const { spec, tools } = reactSpec(typed, options);
    return new Module(
      this,
      { case: "module", value: spec },
      (outputs) => ({ ...checked.parseOutputs(outputs), trajectory: (outputs["trajectory"] ?? {}) as JsonObject }),
      tools,
    );
  }

  /** A module given as its ModuleSpec message; outputs are checked against `sig` when given. */
  module<I extends object = Inputs, O extends object = Outputs>(spec: ModuleSpec, sig?: Signature<I, O>): Module<I, O> {
    return new Module(this, { case: "module", value: spec }, (outputs) =>
      sig ? sig.parseOutputs(outputs) : (outputs as O),
    );
  }

  /**
   * A stored program: "qa", "programs/qa" or a revision, "programs/qa@r0002". Give its signature to
   * have the outputs typed and checked.
   */
  program<I extends object = Inputs, O extends object = Outputs>(name: string, sig?: Signature<I, O>): Module<I, O> {
    return new Module(this, { case: "program", value: programName(name) }, (outputs: JsonObject) =>
      sig ? sig.parseOutputs(outputs) : (outputs as O),
    );
  }

  /** Stores `module` as "programs/{id}" (its first revision, r0001). ALREADY_EXISTS if the id is taken. */
  async createProgram(id: string, module: ModuleLike, fields: ProgramFields = {}, options?: RpcOptions): Promise<Program> {
    const request = create(CreateProgramRequestSchema, {
      programId: id.replace(/^programs\//, ""),
      program: create(ProgramSchema, { ...fields, module: specOf(module) }),
    });
    return new Program(await rpc(() => this.programs.createProgram(request, this.callOptions(options))));
  }

  /** A program at its newest revision, or at the one named with "@". */
  async getProgram(name: string, options?: RpcOptions): Promise<Program> {
    const request = create(GetProgramRequestSchema, { name: programName(name) });
    return new Program(await rpc(() => this.programs.getProgram(request, this.callOptions(options))));
  }

  /**
   * Stores a new revision with the given parts replaced. `etag` (from a Program you read) makes the
   * update fail with ABORTED, reason ETAG_MISMATCH, if someone changed the program in between.
   */
  async updateProgram(
    name: string,
    changes: ProgramFields & { module?: ModuleLike; etag?: string },
    options?: RpcOptions,
  ): Promise<Program> {
    const { module, etag, ...fields } = changes;
    const paths = [
      ...Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k]) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)),
      ...(module ? ["module"] : []),
    ];
    const request = create(UpdateProgramRequestSchema, {
      program: create(ProgramSchema, {
        ...fields,
        name: programName(name),
        etag: etag ?? "",
        module: module ? specOf(module) : undefined,
      }),
      updateMask: create(FieldMaskSchema, { paths }),
    });
    return new Program(await rpc(() => this.programs.updateProgram(request, this.callOptions(options))));
  }

  /** Deletes a program and all its revisions. */
  async deleteProgram(name: string, options: RpcOptions & { etag?: string } = {}): Promise<void> {
    const request = create(DeleteProgramRequestSchema, { name: programName(name), etag: options.etag ?? "" });
    await rpc(() => this.programs.deleteProgram(request, this.callOptions(options)));
  }

  /** Every stored program (newest revision each), in id order, fetching pages as needed. */
  async *listPrograms(options: RpcOptions & { pageSize?: number } = {}): AsyncGenerator<Program> {
    let pageToken = "";
    do {
      const request = create(ListProgramsRequestSchema, { pageSize: options.pageSize ?? 0, pageToken });
      const page = await rpc(() => this.programs.listPrograms(request, this.callOptions(options)));
      for (const program of page.programs) yield new Program(program);
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** A program's revisions, newest first. */
  async *listProgramRevisions(name: string, options: RpcOptions & { pageSize?: number } = {}): AsyncGenerator<Program> {
    let pageToken = "";
    do {
      const request = create(ListProgramRevisionsRequestSchema, {
        name: programName(name),
        pageSize: options.pageSize ?? 0,
        pageToken,
      });
      const page = await rpc(() => this.programs.listProgramRevisions(request, this.callOptions(options)));
      for (const program of page.programs) yield new Program(program);
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  // ---------------------------------------------------------------- budgets (admin scope)

  /**
   * Limits what a program or an API key spends per period to `limitMicros` micro-dollars (exact:
   * `100_000n` is $0.10), as "budgets/{id}".
   */
  async createBudget(
    id: string,
    subject: BudgetSubject,
    limitMicros: bigint,
    options: RpcOptions & { period?: BudgetPeriodName } = {},
  ): Promise<Budget> {
    const request = createBudgetRequest(id, subject, limitMicros, options.period ?? "day");
    return new Budget(await rpc(() => this.budgets.createBudget(request, this.callOptions(options))));
  }

  /** A budget with what it spent, holds reserved and has left in its current period. */
  async getBudget(name: string, options?: RpcOptions): Promise<Budget> {
    const request = create(GetBudgetRequestSchema, { name: budgetName(name) });
    return new Budget(await rpc(() => this.budgets.getBudget(request, this.callOptions(options))));
  }

  /** Changes a budget's limit and/or period; `etag` (from a Budget you read) must match when given. */
  async updateBudget(
    name: string,
    changes: { limitMicros?: bigint; period?: BudgetPeriodName; etag?: string },
    options?: RpcOptions,
  ): Promise<Budget> {
    const request = updateBudgetRequest(name, changes);
    return new Budget(await rpc(() => this.budgets.updateBudget(request, this.callOptions(options))));
  }

  /** Deletes a budget (`etag`, when given, must match). */
  async deleteBudget(name: string, options: RpcOptions & { etag?: string } = {}): Promise<void> {
    const request = create(DeleteBudgetRequestSchema, { name: budgetName(name), etag: options.etag ?? "" });
    await rpc(() => this.budgets.deleteBudget(request, this.callOptions(options)));
  }

  /** Every budget (config and created ones) in id order, pages fetched as you iterate. */
  async *listBudgets(options: RpcOptions & { pageSize?: number } = {}): AsyncGenerator<Budget> {
    let pageToken = "";
    do {
      const request = create(ListBudgetsRequestSchema, { pageSize: options.pageSize ?? 0, pageToken });
      const page = await rpc(() => this.budgets.listBudgets(request, this.callOptions(options)));
      for (const budget of page.budgets) yield new Budget(budget);
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
}
