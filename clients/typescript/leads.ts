// A TypeScript client of the suite: protobuf-es v2 messages and Connect's
// gRPC transport for Node. clients/check.sh generates the client from proto/
// into ./gen (with google/rpc/error_details.proto for the error details) and
// type-checks this file against it with `tsc --noEmit`; docs/clients.md
// walks through it.
//
// Run it against a running suite (after `tsc` without --noEmit):
//   CRM_ADDR=http://127.0.0.1:50051 CRM_TOKEN=$(crm token ...) node leads.js

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
  const requestId = crypto.randomUUID();
  const { lead } = await leads.createLead(
    {
      requestId,
      lead: create(LeadSchema, {
        company: "ACME Robotics",
        contactName: "Li Lei",
        phone: "+86 138 0013 8000",
        sourceChannel: "referral",
      }),
    },
    { timeoutMs: 10_000 },
  );
  if (!lead) throw new Error("no lead in the response");
  console.log(`created ${lead.id}, etag ${lead.etag}`);

  // A change sends the etag it was based on: a stale one is ABORTED
  // (ETAG_MISMATCH): read again and retry.
  try {
    const updated = await leads.updateLead({
      lead: { ...lead, notes: "called back" },
      updateMask: create(FieldMaskSchema, { paths: ["notes"] }),
    });
    console.log(`updated, etag now ${updated.lead?.etag}`);
  } catch (err) {
    if (ConnectError.from(err).code === Code.Aborted) console.log("changed meanwhile: reload");
    else throw err;
  }

  // A bad field: INVALID_ARGUMENT with a BadRequest naming `lead.email`.
  try {
    await leads.createLead({
      lead: { company: "Bad Email Ltd", email: "not-an-email", sourceChannel: "referral" },
    });
  } catch (err) {
    console.log(explain(err));
  }

  const mine = await leads.listLeads({ scope: LeadScope.MINE, pageSize: 50 });
  for (const l of mine.leads) console.log(`${l.id} ${l.company} score ${l.score}`);
}

await main();
