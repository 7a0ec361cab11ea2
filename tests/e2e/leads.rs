//! The leads API through the gateway: intake, validation, duplicates,
//! idempotency, etags, scoring, the pool, follow-ups, statistics, audit.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{common::v1 as common, leads::v1 as pb};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

async fn create(client: &mut LeadsClient, l: pb::Lead) -> pb::Lead {
    client
        .create_lead(pb::CreateLeadRequest {
            lead: Some(l),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
}

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
    let created = create(&mut amy, lead("ACME Robotics", "+86 138 0013 8000")).await;
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

    let created = create(&mut amy, lead("ACME", "010 1234 5678")).await;
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
        create(
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
    let created = create(&mut amy, lead("ACME", "+86 138 0000 0001")).await;
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
    let original = create(
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
    let by_email = create(
        &mut amy,
        pb::Lead {
            email: "wang.fang@huaxin.cn".into(),
            ..lead("Huaxin", "")
        },
    )
    .await;
    let by_phone = create(&mut amy, lead("Huaxin Trading", "+86 139 1111 2222")).await;
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
    create(&mut boss, lead("Existing", "+86 138 0000 9999")).await;
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
    let l = create(&mut amy, lead("ACME", "+86 138 0000 0001")).await;
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

    let a = create(&mut boss, lead("Pool A", "+86 138 0000 0001")).await;
    let b = create(&mut boss, lead("Pool B", "+86 138 0000 0002")).await;
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

    let forgotten = create(&mut amy, lead("Forgotten", "+86 138 0000 0001")).await;
    let followed = create(&mut amy, lead("Followed", "+86 138 0000 0002")).await;
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
    let soon = create(&mut amy, lead("Soon", "+86 138 0000 0001")).await;
    let later = create(
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
    let first = create(&mut amy, lead("Deadline only", "+86 138 0000 0001")).await;
    let reminded = create(&mut amy, lead("Budget frozen in Q4", "+86 138 0000 0002")).await;
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
