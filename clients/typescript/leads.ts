// A TypeScript client of the suite: protobuf-es v2 messages and Connect's
// gRPC transport for Node. clients/check.sh generates the client from proto/
// into ./gen (with google/rpc/error_details.proto for the error details),
// type-checks this file against it with `tsc --noEmit`, then compiles it and
// runs it against the suite it started:
//   CRM_ADDR=http://127.0.0.1:50051 CRM_TOKEN=$(crm token ...) node leads.js
// It throws (exit 1) when the suite does not answer as expected.

import assert from "node:assert/strict";

import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { LeadSchema } from "./gen/crm/leads/v1/lead_pb.js";
import { LeadScope, LeadService } from "./gen/crm/leads/v1/lead_service_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

// Every call carries the bearer token.
const bearer =
  (token: string): Interceptor =>
  (next) =>
  async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

const transport = createGrpcTransport({
  baseUrl: process.env.CRM_ADDR ?? "http://127.0.0.1:50051",
  interceptors: [bearer(process.env.CRM_TOKEN ?? "")],
});
const leads = createClient(LeadService, transport);

// What a refusal says, from the google.rpc details the server attaches.
function explain(err: unknown): string {
  const e = ConnectError.from(err);
  const parts: string[] = [`${Code[e.code]}: ${e.rawMessage}`];
  for (const info of e.findDetails(ErrorInfoSchema)) {
    parts.push(`reason ${info.reason} (${info.domain})`);
  }
  for (const bad of e.findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) parts.push(`${v.field}: ${v.description}`);
  }
  for (const retry of e.findDetails(RetryInfoSchema)) {
    const delay = retry.retryDelay;
    if (delay) parts.push(`retry after ${delay.seconds}s ${delay.nanos}ns`);
  }
  return parts.join("; ");
}

async function main(): Promise<void> {
  // request_id makes the create safe to retry: the same id returns the
  // first result instead of a second lead.
  // (Unique keys: the same phone, email, or company and contact would be a
  // duplicate, ALREADY_EXISTS.)
  const tag = crypto.randomUUID().slice(0, 8);
  const request = {
    requestId: crypto.randomUUID(),
    lead: create(LeadSchema, {
      company: `ACME Robotics ${tag}`,
      contactName: "Li Lei",
      email: `li.lei.${tag}@acme.example`,
      sourceChannel: "referral",
    }),
  };
  const { lead } = await leads.createLead(request, { timeoutMs: 10_000 });
  if (!lead) throw new Error("no lead in the response");
  console.log(`created ${lead.id}, etag ${lead.etag}`);
  const again = await leads.createLead(request, { timeoutMs: 10_000 });
  assert.equal(again.lead?.id, lead.id, "a retry with the same request_id returns the first lead");

  // A change sends the etag it was based on: a stale one is ABORTED
  // (ETAG_MISMATCH): read again and retry.
  const change = {
    lead: { id: lead.id, etag: lead.etag, notes: "called back" },
    updateMask: create(FieldMaskSchema, { paths: ["notes"] }),
  };
  const updated = await leads.updateLead(change, { timeoutMs: 10_000 });
  console.log(`updated, etag now ${updated.lead?.etag}`);
  try {
    await leads.updateLead(change, { timeoutMs: 10_000 }); // the etag it sends is stale now
    assert.fail("a stale etag was accepted");
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code !== Code.Aborted) throw err;
    assert.deepEqual(
      e.findDetails(ErrorInfoSchema).map((i) => i.reason),
      ["ETAG_MISMATCH"],
    );
    console.log("changed meanwhile: read it again and reapply");
  }

  // A bad field: INVALID_ARGUMENT with a BadRequest naming `lead.email`.
  try {
    await leads.createLead(
      { lead: { company: "Bad Email Ltd", email: "not-an-email", sourceChannel: "referral" } },
      { timeoutMs: 10_000 },
    );
    assert.fail("a bad email was accepted");
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code !== Code.InvalidArgument) throw err;
    assert.deepEqual(
      e.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field)),
      ["lead.email"],
    );
    console.log(explain(err));
  }

  const mine = await leads.listLeads({ scope: LeadScope.MINE, pageSize: 500 }, { timeoutMs: 10_000 });
  assert.deepEqual(
    mine.leads.filter((l) => l.company === lead.company).map((l) => l.id),
    [lead.id],
  );
  console.log(`${mine.leads.length} leads of mine, this one once`);
}

await main();
