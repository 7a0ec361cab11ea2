-- pgbench script: the rows one CreateLead commits (the lead, its audit
-- entry, its outbox event) in one transaction, on the schema `crm migrate`
-- made. PostgreSQL's storage ceiling for CreateLead (bench/run.sh).
SELECT gen_random_uuid()::text AS id, gen_random_uuid()::text AS k, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now \gset
BEGIN;
INSERT INTO leads.leads (id, tenant_id, version, company, contact_name, phone, phone_key, email, email_key, name_key, industry, region, company_size, budget, source_channel, owner_id, status, score, score_breakdown, last_follow_up_time, next_follow_up_time, follow_up_deadline, attention_time, notes, disqualify_reason, opportunity_id, account_id, create_time, update_time, creator, updater)
  VALUES (:id, 'bench', 1, 'Ceiling', 'Load Tester', '', :k, '', NULL, :k, '', '', 0, NULL, 'referral', 'bench', 'new', 0, '{}', NULL, NULL, :now, :now, '', NULL, NULL, NULL, :now, :now, 'bench', 'bench');
INSERT INTO leads.audit_entries (id, tenant_id, subject_id, action, actor, time, changes, reason)
  VALUES (gen_random_uuid()::text, 'bench', :id, 'lead.created', 'bench', :now, '[]', '');
INSERT INTO leads.outbox_events (id, sequence, tenant_id, type, subject_id, time, traceparent, tracestate, payload, create_time)
  VALUES (gen_random_uuid()::text, NULL, 'bench', 'crm.leads.v1.LeadCreated', :id, :now, '', '', decode(repeat('00', 200), 'hex'), :now);
END;
