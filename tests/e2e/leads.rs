//! The leads API through the gateway: intake, validation, duplicates,
//! idempotency, etags, scoring, the pool, follow-ups, statistics, audit.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{common::v1 as common, leads::v1 as pb};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

struct People {
    amy: LeadsClient,
    bob: LeadsClient,
    boss: LeadsClient,
}

fn people(suite: &TestSuite) -> People {
    People {
        amy: suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales]))),
        bob: suite.leads_client(Some(&suite.token("acme", "bob", &[Role::Sales]))),
        boss: suite.leads_client(Some(&suite.token(
            "acme",
            "boss",
            &[Role::Manager, Role::Admin],
        ))),
    }
}

#[tokio::test]
async fn create_get_list_and_audit() {
    let suite = start().await;
    let People {
        mut amy, mut boss, ..
    } = people(&suite);
    let created = created_lead(&mut amy, lead("ACME Robotics", "+86 138 0013 8000")).await;
    assert_eq!(created.owner_id, "amy", "a sales user's own lead");
    assert_eq!(created.status, pb::LeadStatus::New as i32);
    assert!(created.follow_up_deadline.is_some());
    let got = amy
        .get_lead(pb::GetLeadRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(got, created);
    let listed = boss
        .list_leads(pb::ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.leads.len(), 1);
    let audit = boss
        .list_audit_entries(pb::ListAuditEntriesRequest {
            lead_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entry = &audit.entries[0];
    assert_eq!(
        (entry.action.as_str(), entry.actor.as_str()),
        ("lead.created", "amy")
    );
    assert!(
        entry
            .changes
            .iter()
            .any(|c| c.field == "company" && c.new_value == "ACME Robotics")
    );
}

#[tokio::test]
async fn every_invalid_field_is_named() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let bad = pb::Lead {
        company: " ".into(),
        email: "not-an-email".into(),
        phone: "call me maybe".into(),
        source_channel: "carrier-pigeon".into(),
        budget_min: Some(common::Money {
            currency_code: "XYZ".into(),
            units: 1,
            nanos: 0,
        }),
        ..Default::default()
    };
    let err = amy
        .create_lead(pb::CreateLeadRequest {
            lead: Some(bad),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = violated_fields(&err);
    for f in [
        "lead.company",
        "lead.email",
        "lead.phone",
        "lead.source_channel",
        "lead.budget_min.currency_code",
    ] {
        assert!(fields.contains(&f.to_owned()), "{f} not in {fields:?}");
    }

    let err = amy
        .list_leads(pb::ListLeadsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["page_size".to_owned()])
    );

    let created = created_lead(&mut amy, lead("ACME", "010 1234 5678")).await;
    let err = amy
        .update_lead(pb::UpdateLeadRequest {
            lead: Some(pb::Lead {
                id: created.id.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["score".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["update_mask".to_owned()])
    );
}

#[tokio::test]
async fn page_tokens_are_bound_to_query_and_tenant() {
    let suite = start().await;
    let People {
        mut amy, mut boss, ..
    } = people(&suite);
    for i in 0..5 {
        created_lead(
            &mut amy,
            lead(&format!("Company {i}"), &format!("+86 138 0000 000{i}")),
        )
        .await;
    }
    // Paging walks every lead once, newest first.
    let (mut seen, mut token) = (Vec::new(), String::new());
    loop {
        let page = boss
            .list_leads(pb::ListLeadsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.leads.into_iter().map(|l| l.company));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // The token of this query is refused for another filter...
        let err = boss
            .list_leads(pb::ListLeadsRequest {
                page_size: 2,
                page_token: token.clone(),
                status: pb::LeadStatus::New as i32,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), vec!["page_token".to_owned()]);
        // ...and for another tenant.
        let mut globex = suite.leads_client(Some(&suite.token("globex", "boss", &[Role::Manager])));
        let err = globex
            .list_leads(pb::ListLeadsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), vec!["page_token".to_owned()]);
    }
    assert_eq!(
        seen,
        [
            "Company 4",
            "Company 3",
            "Company 2",
            "Company 1",
            "Company 0"
        ]
    );
}

#[tokio::test]
async fn stale_etag_is_aborted() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let created = created_lead(&mut amy, lead("ACME", "+86 138 0000 0001")).await;
    let update = |etag: String, notes: &str| pb::UpdateLeadRequest {
        lead: Some(pb::Lead {
            id: created.id.clone(),
            etag,
            notes: notes.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["notes".into()],
        }),
    };
    let first = amy
        .update_lead(update(created.etag.clone(), "first"))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_ne!(first.etag, created.etag);
    let err = amy
        .update_lead(update(created.etag.clone(), "second"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let now = amy
        .get_lead(pb::GetLeadRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(now.notes, "first");
}

#[tokio::test]
async fn a_retried_create_does_not_act_twice() {
    let suite = start().await;
    let People {
        mut amy, mut boss, ..
    } = people(&suite);
    let request = pb::CreateLeadRequest {
        request_id: "req-1".into(),
        lead: Some(lead("ACME", "+86 138 0000 0001")),
        ..Default::default()
    };
    let first = amy.create_lead(request.clone()).await.unwrap().into_inner();
    let again = amy.create_lead(request.clone()).await.unwrap().into_inner();
    assert_eq!(
        first.lead.as_ref().map(|l| &l.id),
        again.lead.as_ref().map(|l| &l.id)
    );
    let listed = boss
        .list_leads(pb::ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.leads.len(), 1);

    let mut different = request;
    different.lead = Some(lead("Globex", "+86 139 0000 0002"));
    let err = amy.create_lead(different).await.unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["request_id".to_owned()])
    );
}

#[tokio::test]
async fn duplicates_are_refused_with_a_pointer_or_merged() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let original = created_lead(
        &mut amy,
        pb::Lead {
            email: "li.lei@acme.cn".into(),
            ..lead("ACME", "+86 138 0013 8000")
        },
    )
    .await;

    for (what, dup) in [
        (
            "phone in another spelling",
            lead("Other Co", "0086 (138) 0013-8000"),
        ),
        (
            "email in another case",
            pb::Lead {
                email: " Li.Lei@ACME.cn".into(),
                ..lead("Other Co", "")
            },
        ),
        (
            "company and contact",
            pb::Lead {
                contact_name: "contact of acme".into(),
                ..lead("acme", "")
            },
        ),
    ] {
        let err = amy
            .create_lead(pb::CreateLeadRequest {
                lead: Some(dup),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{what}");
        let details = err.get_error_details();
        assert_eq!(
            details.resource_info().map(|r| r.resource_name.clone()),
            Some(original.id.clone()),
            "{what}"
        );
    }

    let merged = amy
        .create_lead(pb::CreateLeadRequest {
            lead: Some(pb::Lead {
                industry: "manufacturing".into(),
                notes: "met at expo".into(),
                ..lead("Other Co", "+8613800138000")
            }),
            on_duplicate: pb::DuplicatePolicy::Merge as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(merged.merged);
    let l = merged.lead.unwrap();
    assert_eq!(
        (l.id.as_str(), l.company.as_str(), l.industry.as_str()),
        (original.id.as_str(), "ACME", "manufacturing")
    );
}

#[tokio::test]
async fn a_lead_matching_two_leads_is_a_duplicate_of_the_one_with_its_phone() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let by_email = created_lead(
        &mut amy,
        pb::Lead {
            email: "wang.fang@huaxin.cn".into(),
            ..lead("Huaxin", "")
        },
    )
    .await;
    let by_phone = created_lead(&mut amy, lead("Huaxin Trading", "+86 139 1111 2222")).await;
    assert_ne!(by_email.id, by_phone.id);

    let err = amy
        .create_lead(pb::CreateLeadRequest {
            lead: Some(pb::Lead {
                email: "wang.fang@huaxin.cn".into(),
                ..lead("Huaxin Group", "+86 139 1111 2222")
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        err.get_error_details()
            .resource_info()
            .map(|r| r.resource_name.clone()),
        Some(by_phone.id)
    );
}

#[tokio::test]
async fn an_import_accepts_or_rejects_each_row_once() {
    let suite = start().await;
    let People { mut boss, .. } = people(&suite);
    created_lead(&mut boss, lead("Existing", "+86 138 0000 9999")).await;
    let mut rows: Vec<pb::Lead> = (0..300)
        .map(|i| lead(&format!("Import {i}"), &format!("+86 139 {i:04} 0000")))
        .collect();
    rows.push(lead("", "+86 137 0000 0000")); // invalid: no company
    rows.push(lead("Dup of existing", "+86 138 0000 9999")); // duplicate of a stored lead
    rows.push(lead("Dup in batch", "+86 139 0000 0000")); // duplicate of row 0
    let request = pb::BatchCreateLeadsRequest {
        request_id: "import-1".into(),
        leads: rows,
        ..Default::default()
    };
    let reply = boss
        .batch_create_leads(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.accepted_count, reply.rejected_count), (300, 3));
    let reasons: Vec<_> = reply.results[300..]
        .iter()
        .map(|r| r.rejection.clone().unwrap().reason)
        .collect();
    assert_eq!(
        reasons,
        ["INVALID_FIELD", "DUPLICATE_LEAD", "DUPLICATE_IN_BATCH"]
    );
    assert_eq!(
        reply.results[300].rejection.as_ref().unwrap().field,
        "company"
    );
    assert_eq!(
        reply.results[302]
            .rejection
            .as_ref()
            .unwrap()
            .existing_lead_id,
        reply.results[0].lead_id
    );

    let again = boss.batch_create_leads(request).await.unwrap().into_inner();
    assert_eq!(again, reply, "a retried import returns the first result");
    let stats = boss
        .get_channel_stats(pb::GetChannelStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stats.channels[0].leads, 301,
        "300 imported + 1 existing, nothing twice"
    );
}

async fn log(
    client: &mut LeadsClient,
    id: &str,
    kind: pb::InteractionKind,
) -> Result<pb::Lead, tonic::Status> {
    client
        .log_interaction(pb::LogInteractionRequest {
            lead_id: id.into(),
            interaction: Some(pb::Interaction {
                kind: kind as i32,
                notes: "n".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().lead.unwrap())
}

#[tokio::test]
async fn interactions_rescore_and_qualify() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let l = created_lead(&mut amy, lead("ACME", "+86 138 0000 0001")).await;
    let after_email = log(&mut amy, &l.id, pb::InteractionKind::EmailOpened)
        .await
        .unwrap();
    assert_eq!(
        after_email.status,
        pb::LeadStatus::Working as i32,
        "the owner's interaction is a follow-up"
    );
    assert!(after_email.follow_up_deadline.is_none());
    let after_demo = log(&mut amy, &l.id, pb::InteractionKind::DemoAttended)
        .await
        .unwrap();
    assert!(after_demo.score > after_email.score);
    let breakdown = after_demo.score_breakdown.clone().unwrap();
    assert_eq!(
        breakdown.total,
        breakdown.frequency + breakdown.behaviour + breakdown.profile_fit
    );
    assert!(
        breakdown
            .items
            .iter()
            .any(|i| i.reason.starts_with("demo_attended"))
    );
    let mut last = after_demo;
    for kind in [
        pb::InteractionKind::ContractTemplateViewed,
        pb::InteractionKind::Meeting,
        pb::InteractionKind::Visit,
    ] {
        last = log(&mut amy, &l.id, kind).await.unwrap();
    }
    assert!(last.score >= 80, "{last:?}");
    assert_eq!(last.status, pb::LeadStatus::Qualified as i32);
    let listed = amy
        .list_interactions(pb::ListInteractionsRequest {
            lead_id: l.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.interactions.len(), 5);
    assert_eq!(
        listed.interactions[0].kind,
        pb::InteractionKind::Visit as i32,
        "newest first"
    );
}

#[tokio::test]
async fn the_pool_claim_limit_and_closed_leads() {
    let suite = start().await;
    let People {
        mut amy,
        mut bob,
        mut boss,
    } = people(&suite);
    let mut config = boss
        .get_lead_config(pb::GetLeadConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    config.daily_claim_limit = 1;
    boss.update_lead_config(pb::UpdateLeadConfigRequest {
        config: Some(config),
    })
    .await
    .unwrap();

    let a = created_lead(&mut boss, lead("Pool A", "+86 138 0000 0001")).await;
    let b = created_lead(&mut boss, lead("Pool B", "+86 138 0000 0002")).await;
    assert_eq!(
        a.owner_id, "",
        "a manager's lead without owner goes to the pool"
    );

    let claimed = amy
        .claim_lead(pb::ClaimLeadRequest {
            id: a.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(claimed.owner_id, "amy");
    let err = bob
        .claim_lead(pb::ClaimLeadRequest {
            id: a.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "LEAD_OWNED")
    );
    let err = amy
        .claim_lead(pb::ClaimLeadRequest {
            id: b.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "CLAIM_LIMIT_REACHED")
    );
    // Bob cannot see or touch Amy's lead.
    let err = bob
        .get_lead(pb::GetLeadRequest { id: a.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    amy.disqualify_lead(pb::DisqualifyLeadRequest {
        id: a.id.clone(),
        reason: "no budget this year".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let err = log(&mut amy, &a.id, pb::InteractionKind::Meeting)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "LEAD_CLOSED")
    );
    let err = amy
        .release_lead(pb::ReleaseLeadRequest {
            id: a.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn unfollowed_leads_return_to_the_pool() {
    let suite = start().await;
    let People {
        mut amy, mut boss, ..
    } = people(&suite);
    let mut config = boss
        .get_lead_config(pb::GetLeadConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    config.follow_up_window = Some(prost_types::Duration {
        seconds: 1,
        nanos: 0,
    });
    boss.update_lead_config(pb::UpdateLeadConfigRequest {
        config: Some(config),
    })
    .await
    .unwrap();

    let forgotten = created_lead(&mut amy, lead("Forgotten", "+86 138 0000 0001")).await;
    let followed = created_lead(&mut amy, lead("Followed", "+86 138 0000 0002")).await;
    log(&mut amy, &followed.id, pb::InteractionKind::CallConnected)
        .await
        .unwrap();

    let returned = eventually(
        Duration::from_secs(15),
        "the sweeper to return the lead",
        || {
            let mut boss = boss.clone();
            let id = forgotten.id.clone();
            async move {
                let l = boss
                    .get_lead(pb::GetLeadRequest { id })
                    .await
                    .ok()?
                    .into_inner()
                    .lead?;
                l.owner_id.is_empty().then_some(l)
            }
        },
    )
    .await;
    assert!(returned.follow_up_deadline.is_none());
    let audit = boss
        .list_audit_entries(pb::ListAuditEntriesRequest {
            lead_id: forgotten.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entry = &audit.entries[0];
    assert_eq!(
        (entry.action.as_str(), entry.actor.as_str()),
        ("lead.returned_to_pool", "system:leads-sweeper")
    );
    let kept = boss
        .get_lead(pb::GetLeadRequest { id: followed.id })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(kept.owner_id, "amy", "a followed-up lead stays");
}

#[tokio::test]
async fn due_follow_ups_and_channel_stats() {
    let suite = start().await;
    let People {
        mut amy, mut boss, ..
    } = people(&suite);
    let soon = created_lead(&mut amy, lead("Soon", "+86 138 0000 0001")).await;
    let later = created_lead(
        &mut amy,
        pb::Lead {
            source_channel: "sem".into(),
            ..lead("Later", "+86 138 0000 0002")
        },
    )
    .await;
    let in_three_days = prost_types::Timestamp {
        seconds: unix_now() + 3 * 86_400,
        nanos: 0,
    };
    let due = amy
        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
            due_before: Some(in_three_days),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = due.leads.iter().map(|l| l.id.clone()).collect();
    assert_eq!(
        ids,
        [soon.id.clone(), later.id.clone()],
        "both deadlines fall in the next 48h, soonest first"
    );
    let none_yet = amy
        .list_due_follow_ups(pb::ListDueFollowUpsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(none_yet.leads.is_empty());

    amy.disqualify_lead(pb::DisqualifyLeadRequest {
        id: later.id.clone(),
        reason: "wrong market".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let stats = boss
        .get_channel_stats(pb::GetChannelStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    let by: Vec<_> = stats
        .channels
        .iter()
        .map(|c| (c.channel.as_str(), c.leads, c.disqualified))
        .collect();
    assert_eq!(by, [("referral", 1, 0), ("sem", 1, 1)]);
}

#[tokio::test]
async fn a_reminder_puts_a_lead_on_the_due_list_before_its_deadline() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let first = created_lead(&mut amy, lead("Deadline only", "+86 138 0000 0001")).await;
    let reminded = created_lead(&mut amy, lead("Budget frozen in Q4", "+86 138 0000 0002")).await;
    // Followed up: no deadline any more, so only a reminder brings it back.
    log(&mut amy, &reminded.id, pb::InteractionKind::CallConnected)
        .await
        .unwrap();
    let in_an_hour = prost_types::Timestamp {
        seconds: unix_now() + 3_600,
        nanos: 0,
    };
    amy.update_lead(pb::UpdateLeadRequest {
        lead: Some(pb::Lead {
            id: reminded.id.clone(),
            next_follow_up_time: Some(in_an_hour),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["next_follow_up_time".into()],
        }),
    })
    .await
    .unwrap();
    let due = |hours: i64| pb::ListDueFollowUpsRequest {
        due_before: Some(prost_types::Timestamp {
            seconds: unix_now() + hours * 3_600,
            nanos: 0,
        }),
        ..Default::default()
    };
    let soon: Vec<_> = amy
        .list_due_follow_ups(due(2))
        .await
        .unwrap()
        .into_inner()
        .leads
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(
        soon,
        vec![reminded.id.clone()],
        "the reminder is due in an hour; the 48h deadline is not"
    );
    let later: Vec<_> = amy
        .list_due_follow_ups(due(72))
        .await
        .unwrap()
        .into_inner()
        .leads
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(later, [reminded.id, first.id], "soonest first");
}

/// A lead as `client` sees it, or the status that refused it.
async fn get(client: &mut LeadsClient, id: &str) -> Result<pb::Lead, tonic::Status> {
    let reply = client
        .get_lead(pb::GetLeadRequest { id: id.into() })
        .await?;
    Ok(reply.into_inner().lead.unwrap())
}

/// Asserts `err` refuses a duplicate without naming the lead `hidden`.
fn refused_without_naming(err: &tonic::Status, hidden: &str, reason_given: &str) {
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(reason(err), reason_given);
    let named = err
        .get_error_details()
        .resource_info()
        .map(|r| r.resource_name.clone())
        .unwrap_or_default();
    assert_eq!(named, "", "the lead is not named");
    assert!(!err.message().contains(hidden), "{}", err.message());
}

/// Imports `rows`: each row's rejection as (reason, field, the lead it
/// names), empty for an accepted row.
async fn import(
    client: &mut LeadsClient,
    rows: Vec<pb::Lead>,
    on_duplicate: pb::DuplicatePolicy,
) -> Vec<(String, String, String)> {
    client
        .batch_create_leads(pb::BatchCreateLeadsRequest {
            leads: rows,
            on_duplicate: on_duplicate as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .into_iter()
        .map(|r| {
            let r = r.rejection.unwrap_or_default();
            (r.reason, r.field, r.existing_lead_id)
        })
        .collect()
}

#[tokio::test]
async fn finding_1_a_merge_needs_the_right_to_change_the_target() {
    let suite = start().await;
    let People {
        mut amy,
        mut bob,
        mut boss,
    } = people(&suite);
    let private = pb::Lead {
        email: "li.lei@acme.cn".into(),
        notes: "amy's private notes".into(),
        ..lead("ACME", "+86 138 0013 8000")
    };
    let amys = created_lead(&mut amy, private).await;
    let bobs = pb::Lead {
        notes: "bob was here".into(),
        ..lead("Other Co", "+86 138 0013 8000")
    };
    let err = bob
        .create_lead(pb::CreateLeadRequest {
            lead: Some(bobs.clone()),
            on_duplicate: pb::DuplicatePolicy::Merge as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused_without_naming(&err, &amys.id, "DUPLICATE_LEAD");
    assert!(!err.message().contains("li.lei"), "{}", err.message());
    let rows = import(&mut bob, vec![bobs.clone()], pb::DuplicatePolicy::Merge).await;
    assert_eq!(
        rows[0],
        ("DUPLICATE_LEAD".into(), "phone".into(), String::new())
    );
    assert_eq!(get(&mut amy, &amys.id).await.unwrap(), amys, "untouched");

    // Who may change the lead merges into it.
    let merged = boss
        .create_lead(pb::CreateLeadRequest {
            lead: Some(bobs),
            on_duplicate: pb::DuplicatePolicy::Merge as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(merged.merged);
    assert!(merged.lead.unwrap().notes.contains("bob was here"));
}

/// The suite without rate limits, for the races' bursts of calls.
async fn start_unlimited(tweak: impl FnOnce(&mut Settings)) -> TestSuite {
    start_with(|s| {
        for limit in [&mut s.gateway.rate_limit, &mut s.server.rate_limit] {
            limit.requests_per_second = 0;
            limit.subject_requests_per_second = 0;
        }
        tweak(s);
    })
    .await
}

#[tokio::test]
async fn finding_5_a_delete_racing_an_update_deletes_all_or_nothing() {
    let suite = start_unlimited(|_| {}).await;
    let People { mut boss, .. } = people(&suite);
    for round in 0..30 {
        let l = created_lead(
            &mut boss,
            lead(
                &format!("Race {round}"),
                &format!("+86 139 0000 {round:04}"),
            ),
        )
        .await;
        log(&mut boss, &l.id, pb::InteractionKind::CallConnected)
            .await
            .unwrap();
        let etag = get(&mut boss, &l.id).await.unwrap().etag;
        let (mut deleter, mut updater) = (boss.clone(), boss.clone());
        let delete = deleter.delete_lead(pb::DeleteLeadRequest {
            id: l.id.clone(),
            etag: etag.clone(),
        });
        let update = updater.update_lead(pb::UpdateLeadRequest {
            lead: Some(pb::Lead {
                id: l.id.clone(),
                industry: format!("round {round}"),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["industry".into()],
            }),
        });
        let (deleted, _) = tokio::join!(delete, update);
        let now = get(&mut boss, &l.id).await;
        match deleted {
            Ok(_) => assert_eq!(now.unwrap_err().code(), Code::NotFound, "round {round}"),
            Err(err) => {
                assert_eq!(err.code(), Code::Aborted, "round {round}: {err:?}");
                assert!(
                    now.is_ok(),
                    "round {round}: refused, so still there: {now:?}"
                );
                let interactions = boss
                    .list_interactions(pb::ListInteractionsRequest {
                        lead_id: l.id.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .interactions;
                assert_eq!(
                    interactions.len(),
                    1,
                    "round {round}: its interactions kept"
                );
            }
        }
    }
}

#[tokio::test]
async fn finding_11_parallel_claims_keep_the_daily_limit() {
    let suite = start_unlimited(|s| s.leads.defaults.daily_claim_limit = 1).await;
    let People { mut boss, .. } = people(&suite);
    for round in 0..10 {
        let token = suite.token("acme", &format!("rep-{round}"), &[Role::Sales]);
        let rep = suite.leads_client(Some(&token));
        let a = created_lead(
            &mut boss,
            lead(
                &format!("Pool {round}a"),
                &format!("+86 137 0000 {round:02}01"),
            ),
        )
        .await;
        let b = created_lead(
            &mut boss,
            lead(
                &format!("Pool {round}b"),
                &format!("+86 137 0000 {round:02}02"),
            ),
        )
        .await;
        let claim = |id: String| {
            let mut rep = rep.clone();
            async move {
                rep.claim_lead(pb::ClaimLeadRequest {
                    id,
                    ..Default::default()
                })
                .await
            }
        };
        let (first, second) = tokio::join!(claim(a.id), claim(b.id));
        let refused: Vec<_> = [first, second]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert_eq!(refused.len(), 1, "round {round}: exactly one claim");
        assert_eq!(refused[0].code(), Code::FailedPrecondition);
        assert_eq!(reason(&refused[0]), "CLAIM_LIMIT_REACHED");
    }
}

#[tokio::test]
async fn finding_12_parallel_conversions_without_an_etag_all_succeed() {
    let suite = start_unlimited(|_| {}).await;
    let People { mut amy, .. } = people(&suite);
    for round in 0..10 {
        let l = created_lead(
            &mut amy,
            lead(
                &format!("Convert {round}"),
                &format!("+86 136 0000 {round:04}"),
            ),
        )
        .await;
        let convert = || {
            let mut amy = amy.clone();
            let id = l.id.clone();
            async move {
                amy.convert_lead(pb::ConvertLeadRequest {
                    id,
                    amount: cny(1_000),
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().lead.unwrap().opportunity_id)
            }
        };
        let (a, b, c) = tokio::join!(convert(), convert(), convert());
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert!(
            !a.is_empty() && a == b && b == c,
            "round {round}: one opportunity"
        );
    }
}

#[tokio::test]
async fn finding_14_a_merge_onto_a_third_leads_key_rejects_that_row() {
    let suite = start().await;
    let People { mut boss, .. } = people(&suite);
    let target = created_lead(&mut boss, lead("Target", "+86 135 0000 0001")).await;
    let third = created_lead(
        &mut boss,
        pb::Lead {
            email: "taken@acme.cn".into(),
            ..lead("Third", "")
        },
    )
    .await;
    let conflicting = pb::Lead {
        email: "taken@acme.cn".into(),
        ..lead("Target", "+86 135 0000 0001")
    };
    let rows = import(
        &mut boss,
        vec![conflicting.clone(), lead("Fresh", "+86 135 0000 0002")],
        pb::DuplicatePolicy::Merge,
    )
    .await;
    assert_eq!(rows[0], ("MERGE_CONFLICT".into(), "email".into(), third.id));
    assert_eq!(rows[1].0, "", "the other row is imported");
    let err = boss
        .create_lead(pb::CreateLeadRequest {
            lead: Some(conflicting),
            on_duplicate: pb::DuplicatePolicy::Merge as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "MERGE_CONFLICT")
    );
    assert_eq!(get(&mut boss, &target.id).await.unwrap().email, "");
}

#[tokio::test]
async fn finding_15_a_duplicate_or_a_replay_shows_only_visible_leads() {
    let suite = start().await;
    let People {
        mut amy, mut bob, ..
    } = people(&suite);
    let request = pb::CreateLeadRequest {
        lead: Some(lead("ACME", "+86 134 0000 0001")),
        request_id: "f15-create".into(),
        ..Default::default()
    };
    let amys = amy.create_lead(request.clone()).await.unwrap().into_inner();
    let amys = amys.lead.unwrap();

    let err = bob
        .create_lead(pb::CreateLeadRequest {
            lead: Some(lead("Other", "+86 134 0000 0001")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    refused_without_naming(&err, &amys.id, "DUPLICATE_LEAD");
    let rows = import(
        &mut bob,
        vec![lead("Other", "+86 134 0000 0001")],
        pb::DuplicatePolicy::Reject,
    )
    .await;
    assert_eq!(
        rows[0],
        ("DUPLICATE_LEAD".into(), "phone".into(), String::new())
    );

    // Bob replays amy's request: her lead stays hers.
    let err = bob.create_lead(request.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let again = amy.create_lead(request).await.unwrap().into_inner();
    assert_eq!(again.lead.unwrap().id, amys.id, "amy's own replay");
}

#[tokio::test]
async fn finding_20_names_are_compared_in_their_nfkc_form() {
    let suite = start().await;
    let People { mut amy, .. } = people(&suite);
    let wide = pb::Lead {
        contact_name: "Ｌｉ Ｌｅｉ".into(),
        ..lead("ＡＣＭＥ", "")
    };
    created_lead(&mut amy, wide).await;
    let err = amy
        .create_lead(pb::CreateLeadRequest {
            lead: Some(pb::Lead {
                contact_name: "Li Lei".into(),
                ..lead("ACME", "")
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "DUPLICATE_LEAD")
    );
    for nothing in ["...", "🚀🚀", "!?"] {
        let err = amy
            .create_lead(pb::CreateLeadRequest {
                lead: Some(lead(nothing, "")),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{nothing:?}");
        assert_eq!(violated_fields(&err), ["lead.company"], "{nothing:?}");
    }
}

/// An "opportunities service" that accepts connections and never answers.
async fn silent_peer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// Converts a new lead of amy's against a silent opportunities service
/// with `deadline`: the status and how long it took.
async fn convert_against_silence(cap: Duration, deadline: Duration) -> (tonic::Status, Duration) {
    let url = silent_peer().await;
    let suite = start_with(|s| {
        s.leads.opportunities_url = Some(url);
        s.leads.convert_timeout = cap;
    })
    .await;
    let People { mut amy, .. } = people(&suite);
    let l = created_lead(&mut amy, lead("Slow Co", "+86 133 0000 0001")).await;
    let mut request = tonic::Request::new(pb::ConvertLeadRequest {
        id: l.id,
        ..Default::default()
    });
    request.set_timeout(deadline);
    let started = std::time::Instant::now();
    let err = amy.convert_lead(request).await.unwrap_err();
    (err, started.elapsed())
}

#[tokio::test]
async fn finding_23_conversion_waits_no_longer_than_the_caller_or_the_setting() {
    // The caller's deadline: answered before it, as the peer being late.
    let (err, _) = convert_against_silence(Duration::from_secs(60), Duration::from_secs(2)).await;
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason(&err), "OPPORTUNITIES_UNAVAILABLE");
    // The setting's cap, for a caller with time to spare.
    let (err, took) =
        convert_against_silence(Duration::from_millis(300), Duration::from_secs(25)).await;
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
