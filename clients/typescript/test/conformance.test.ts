// The conformance scenarios against a real server: set DSPY_GRPC_CONFORMANCE_ADDR=host:port (the
// Python suite starts one with `python -m tests.conformance.serve` and sets it); skipped otherwise.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { DspyClient } from "../src/index.js";
import { ADDRESS_ENV, loadScenarios, newRunId, runScenario } from "./conformance.js";

const address = process.env[ADDRESS_ENV];
const skip = address ? false : `${ADDRESS_ENV} is not set`;

describe("conformance", { skip }, () => {
  const client = new DspyClient(address ?? "", { timeoutMs: 30_000 });
  after(() => client.close());
  const runId = newRunId();
  for (const scenario of loadScenarios(runId)) {
    test(scenario.name, async () => {
      assert.deepEqual(await runScenario(client, scenario), []);
    });
  }
});
