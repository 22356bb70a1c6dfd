// The budget helpers against the conformance server: set DSPY_GRPC_CONFORMANCE_ADDR=host:port
// (the Python suite starts one and sets it); skipped otherwise.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Budget, DspyClient, DspyGrpcError, MICROS_PER_USD } from "../src/index.js";
import { ADDRESS_ENV, newRunId } from "./conformance.js";

const address = process.env[ADDRESS_ENV];
const skip = address ? false : `${ADDRESS_ENV} is not set`;

describe("budgets", { skip }, () => {
  const client = new DspyClient(address ?? "", { timeoutMs: 30_000 });
  after(() => client.close());

  test("create, read, update, list and delete a budget in exact micro-dollars", async () => {
    const id = `ts-budget-${newRunId()}`;
    const created = await client.createBudget(id, { program: "ts-budgeted" }, MICROS_PER_USD / 10n, { period: "total" });
    assert.ok(created instanceof Budget);
    assert.equal(created.name, `budgets/${id}`);
    assert.equal(created.program, "programs/ts-budgeted");
    assert.equal(created.limitMicros, 100_000n);
    assert.equal(created.remainingMicros, 100_000n);
    assert.equal(created.period, "total");
    assert.equal(created.source, "api");
    assert.equal(created.periodStartDate, "1970-01-01");

    const updated = await client.updateBudget(id, { limitMicros: 250_000n, etag: created.etag });
    assert.equal(updated.limitMicros, 250_000n);
    const names: string[] = [];
    for await (const budget of client.listBudgets({ pageSize: 1 })) names.push(budget.name);
    assert.ok(names.includes(`budgets/${id}`));

    await client.deleteBudget(id, { etag: updated.etag });
    await assert.rejects(client.getBudget(id), (error: unknown) => error instanceof DspyGrpcError && error.reason === "BUDGET_NOT_FOUND");
  });
});
