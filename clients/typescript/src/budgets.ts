// Budgets (BudgetService, admin scope): spending limits per program or API key, in exact
// micro-dollars (bigint: 1 USD = 1_000_000n).
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import {
  BudgetPeriod,
  BudgetSchema,
  BudgetSource,
  CreateBudgetRequestSchema,
  UpdateBudgetRequestSchema,
  type Budget as BudgetProto,
  type CreateBudgetRequest,
  type UpdateBudgetRequest,
} from "./gen/dspy_grpc/v1/budget_pb.js";

/** One US dollar in micro-dollars, the unit budgets are counted in. */
export const MICROS_PER_USD = 1_000_000n;

/** The period a budget's limit applies to. */
export type BudgetPeriodName = "day" | "month" | "total";

const PERIODS: Record<BudgetPeriodName, BudgetPeriod> = {
  day: BudgetPeriod.DAY,
  month: BudgetPeriod.MONTH,
  total: BudgetPeriod.TOTAL,
};

/** What a budget limits: exactly one of a program ("qa" or "programs/qa") and an API key id. */
export type BudgetSubject = { program: string; apiKeyId?: never } | { apiKeyId: string; program?: never };

/** A budget and what was spent against it in its current period. */
export class Budget {
  readonly name: string;
  /** "programs/qa", or "" for an API key budget. */
  readonly program: string;
  readonly apiKeyId: string;
  readonly period: BudgetPeriodName;
  readonly limitMicros: bigint;
  readonly spentMicros: bigint;
  /** Held by calls in flight right now. */
  readonly reservedMicros: bigint;
  readonly remainingMicros: bigint;
  /** "config" (the server's config file: read-only) or "api". */
  readonly source: "config" | "api";
  /** First day (UTC) of the current period, "YYYY-MM-DD". */
  readonly periodStartDate: string;
  readonly etag: string;
  readonly createTime?: Date;
  readonly updateTime?: Date;

  constructor(readonly raw: BudgetProto) {
    this.name = raw.name;
    this.program = raw.program;
    this.apiKeyId = raw.apiKeyId;
    this.period = raw.period === BudgetPeriod.MONTH ? "month" : raw.period === BudgetPeriod.TOTAL ? "total" : "day";
    this.limitMicros = raw.limitMicros;
    this.spentMicros = raw.spentMicros;
    this.reservedMicros = raw.reservedMicros;
    this.remainingMicros = raw.remainingMicros;
    this.source = raw.source === BudgetSource.CONFIG ? "config" : "api";
    this.periodStartDate = raw.periodStartDate;
    this.etag = raw.etag;
    this.createTime = raw.createTime ? timestampDate(raw.createTime) : undefined;
    this.updateTime = raw.updateTime ? timestampDate(raw.updateTime) : undefined;
  }

  /** The id, "team-a" for "budgets/team-a". */
  get budgetId(): string {
    return this.name.replace(/^budgets\//, "");
  }
}

/** "team-a" or "budgets/team-a" -> "budgets/team-a". */
export function budgetName(nameOrId: string): string {
  return nameOrId.startsWith("budgets/") ? nameOrId : `budgets/${nameOrId}`;
}

/** @internal */
export function createBudgetRequest(
  id: string,
  subject: BudgetSubject,
  limitMicros: bigint,
  period: BudgetPeriodName,
): CreateBudgetRequest {
  const program = subject.program ? (subject.program.startsWith("programs/") ? subject.program : `programs/${subject.program}`) : "";
  return create(CreateBudgetRequestSchema, {
    budgetId: id,
    budget: create(BudgetSchema, { program, apiKeyId: subject.apiKeyId ?? "", period: PERIODS[period], limitMicros }),
  });
}

/** @internal */
export function updateBudgetRequest(
  name: string,
  changes: { limitMicros?: bigint; period?: BudgetPeriodName; etag?: string },
): UpdateBudgetRequest {
  const paths: string[] = [];
  const budget = create(BudgetSchema, { name: budgetName(name), etag: changes.etag ?? "" });
  if (changes.limitMicros !== undefined) {
    budget.limitMicros = changes.limitMicros;
    paths.push("limit_micros");
  }
  if (changes.period !== undefined) {
    budget.period = PERIODS[changes.period];
    paths.push("period");
  }
  if (paths.length === 0) throw new Error("nothing to update: give limitMicros or period");
  return create(UpdateBudgetRequestSchema, { budget, updateMask: create(FieldMaskSchema, { paths }) });
}
