// Usage and cost queries (UsageService; needs an API key with the admin scope).
import { create } from "@bufbuild/protobuf";
import {
  QueryUsageRequestSchema,
  UsageDimension,
  UsagePeriod,
  type UsageRow as UsageRowMessage,
} from "./gen/dspy_grpc/v1/usage_pb.js";

/** UTC time buckets: one for the whole range, one per day ("2026-12-06") or per month ("2026-12"). */
export type UsagePeriodName = "total" | "day" | "month";
/** Dimensions usage can be kept apart by. */
export type UsageDimensionName = "program" | "apiKey" | "model";

export interface UsageQuery {
  /** Default "total". */
  period?: UsagePeriodName;
  /** Dimensions kept apart; the others are summed over. */
  groupBy?: UsageDimensionName[];
  /** Only these programs ("qa" or "programs/qa"; "" for inline modules and raw LM calls). */
  programs?: string[];
  /** Only these API key ids ("" for calls made without a key). */
  apiKeyIds?: string[];
  /** Only these model aliases. */
  models?: string[];
  /** First and last UTC day included, "YYYY-MM-DD". */
  start?: string;
  end?: string;
  /** Rows fetched per call (every page is fetched). */
  pageSize?: number;
}

/** Usage summed over one period and one value of each grouped dimension ("" for the others). */
export interface UsageRow {
  period: string;
  program: string;
  apiKeyId: string;
  model: string;
  calls: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  estimatedCalls: number;
  costUsd: number;
}

export interface UsageReport {
  rows: UsageRow[];
  total: UsageRow;
}

const PERIODS: Record<UsagePeriodName, UsagePeriod> = {
  total: UsagePeriod.TOTAL,
  day: UsagePeriod.DAY,
  month: UsagePeriod.MONTH,
};
const DIMENSIONS: Record<UsageDimensionName, UsageDimension> = {
  program: UsageDimension.PROGRAM,
  apiKey: UsageDimension.API_KEY,
  model: UsageDimension.MODEL,
};

/** @internal */
export function usageRequest(query: UsageQuery, pageToken: string) {
  return create(QueryUsageRequestSchema, {
    programs: (query.programs ?? []).map((p) => (p === "" || p.startsWith("programs/") ? p : `programs/${p}`)),
    apiKeyIds: query.apiKeyIds ?? [],
    models: query.models ?? [],
    startDay: query.start ?? "",
    endDay: query.end ?? "",
    period: PERIODS[query.period ?? "total"],
    groupBy: (query.groupBy ?? []).map((d) => DIMENSIONS[d]),
    pageSize: query.pageSize ?? 0,
    pageToken,
  });
}

/** @internal */
export function usageRow(row: UsageRowMessage | undefined): UsageRow {
  return {
    period: row?.period ?? "",
    program: row?.program ?? "",
    apiKeyId: row?.apiKeyId ?? "",
    model: row?.model ?? "",
    calls: Number(row?.calls ?? 0),
    cacheHits: Number(row?.cacheHits ?? 0),
    promptTokens: Number(row?.promptTokens ?? 0),
    completionTokens: Number(row?.completionTokens ?? 0),
    estimatedCalls: Number(row?.estimatedCalls ?? 0),
    costUsd: row?.costUsd ?? 0,
  };
}
