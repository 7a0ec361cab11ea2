//! Issue 11, "done when": every request validator of leads and
//! opportunities, driven through the gateway with arbitrary strings (NUL,
//! control characters, CJK, emoji, combining marks, bidi controls, huge)
//! and numbers (negative, zero, extremes), answers with a client's error or
//! success and never INTERNAL, UNKNOWN or UNAVAILABLE, on either backend.
//!
//! The suite starts once; a deterministic generator (fixed seed) makes
//! `CASES` requests per method, so a failure is the same on every run.

use std::fmt::Debug;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{common::v1 as common, leads::v1 as leads, opportunities::v1 as pb};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use tonic::Code;

const CASES: usize = 64;

/// One character of the kinds that break naive validators.
fn character() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range(' ', '~'),
        1 => Just('\0'),
        1 => proptest::char::range('\u{1}', '\u{1f}'),
        2 => proptest::char::range('\u{4e00}', '\u{9fff}'),
        2 => proptest::char::range('\u{1f300}', '\u{1faff}'),
        2 => proptest::char::range('\u{300}', '\u{36f}'),
        1 => prop::sample::select(vec![
            '\u{7f}', '\u{85}', '\u{200b}', '\u{200d}', '\u{202e}', '\u{2028}', '\u{feff}',
            '\u{fffd}', '\u{ff21}', '\u{e000}', '\u{10ffff}', '\n', '\t', '%', '\'', '"', '\\',
        ]),
        1 => any::<char>(),
    ]
}

/// A character a validator should accept in a name: letters of any
/// script, emoji, combining marks, punctuation; no control characters.
fn clean_character() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('\u{4e00}', '\u{9fff}'),
        1 => proptest::char::range('\u{1f300}', '\u{1faff}'),
        1 => proptest::char::range('\u{300}', '\u{36f}'),
        1 => prop::sample::select(vec![' ', '-', '\'', '%', '_', '.', '\u{ff21}', '\u{fffd}', 'É']),
    ]
}

/// Arbitrary text: mostly short, sometimes long or huge.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(character(), 0..40).prop_map(String::from_iter),
        1 => prop::collection::vec(character(), 40..400).prop_map(String::from_iter),
        1 => (character(), 1_000..20_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// Text that may well pass validation, so that the work behind it runs.
fn clean_text() -> BoxedStrategy<String> {
    prop::collection::vec(clean_character(), 1..30)
        .prop_map(|cs| format!("x{}", String::from_iter(cs)))
        .boxed()
}

fn int32() -> BoxedStrategy<i32> {
    prop_oneof![
        3 => -3..12i32,
        2 => any::<i32>(),
        1 => prop::sample::select(vec![i32::MIN, i32::MAX, -1, 0, 999_999_999, 1_000_000_000]),
    ]
    .boxed()
}

fn int64() -> BoxedStrategy<i64> {
    prop_oneof![
        3 => -3..1_000_000i64,
        2 => any::<i64>(),
        1 => prop::sample::select(vec![
            i64::MIN, i64::MAX, -1, 0, 253_402_300_799, 253_402_300_800, -62_135_596_801,
        ]),
    ]
    .boxed()
}

/// A generator of request parts with a fixed seed. Each field is
/// plausible or, one time in eight, arbitrary: most requests then carry one
/// or two bad fields and reach the checks behind the first.
struct Gen(TestRunner, u32);

impl Gen {
    fn new() -> Self {
        let config = Config {
            cases: CASES as u32,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        Gen(TestRunner::new_with_rng(config, rng), 0)
    }

    fn sample<T: Debug>(&mut self, strategy: impl Strategy<Value = T>) -> T {
        strategy.new_tree(&mut self.0).expect("a value").current()
    }

    fn bool(&mut self) -> bool {
        self.sample(any::<bool>())
    }

    fn dirty(&mut self) -> bool {
        self.sample(0..8u8) == 0
    }

    /// Free text: plausible words of any script, or arbitrary.
    fn text(&mut self) -> String {
        if self.dirty() {
            self.sample(text())
        } else {
            self.sample(clean_text())
        }
    }

    /// One of `valid`, or arbitrary.
    fn pick(&mut self, valid: &[&'static str]) -> String {
        if self.dirty() {
            self.sample(text())
        } else {
            self.sample(prop::sample::select(valid.to_vec())).to_owned()
        }
    }

    /// A real id (or now and then none), or arbitrary text in its place.
    fn id(&mut self, real: &str) -> String {
        match self.sample(0..8u8) {
            0 | 1 => self.sample(text()),
            2 => String::new(),
            _ => real.to_owned(),
        }
    }

    /// None, a fresh request id, or arbitrary text.
    fn request_id(&mut self) -> String {
        self.1 += 1;
        match self.sample(0..8u8) {
            0 => self.sample(text()),
            1..=3 => String::new(),
            _ => format!("req-{}", self.1),
        }
    }

    /// A number in `lo..hi`, or arbitrary.
    fn i32(&mut self, lo: i32, hi: i32) -> i32 {
        if self.dirty() {
            self.sample(int32())
        } else {
            self.sample(lo..hi)
        }
    }

    fn i64(&mut self, lo: i64, hi: i64) -> i64 {
        if self.dirty() {
            self.sample(int64())
        } else {
            self.sample(lo..hi)
        }
    }

    fn texts(&mut self) -> Vec<String> {
        let n = self.sample(prop_oneof![8 => 0..4usize, 1 => 90..110usize]);
        (0..n).map(|_| self.text()).collect()
    }

    fn money(&mut self) -> Option<common::Money> {
        self.bool().then(|| common::Money {
            currency_code: self.pick(&["CNY", "CNY", "USD"]),
            units: self.i64(0, 10_000_000),
            nanos: self.i32(0, 1),
        })
    }

    fn date(&mut self) -> Option<common::Date> {
        self.bool().then(|| common::Date {
            year: self.i32(2025, 2031),
            month: self.i32(1, 13),
            day: self.i32(1, 29),
        })
    }

    fn time(&mut self) -> Option<prost_types::Timestamp> {
        let now = unix_now();
        self.bool().then(|| prost_types::Timestamp {
            seconds: self.i64(now - 86_400 * 30, now + 86_400 * 30),
            nanos: self.i32(0, 1_000_000),
        })
    }

    fn mask(&mut self, fields: &[&'static str]) -> Option<prost_types::FieldMask> {
        let n = self.sample(0..4usize);
        let paths = (0..n).map(|_| self.pick(fields)).collect();
        self.bool().then_some(prost_types::FieldMask { paths })
    }

    fn lead(&mut self, id: &str) -> leads::Lead {
        leads::Lead {
            id: self.id(id),
            etag: self.pick(&[""]),
            company: self.text(),
            contact_name: self.text(),
            phone: self.pick(&["", "+86 138 0013 8000", "010-8888 6666", "13800138000"]),
            email: self.pick(&["", "li@acme.cn", "Ｌｉ@ＡＣＭＥ.cn"]),
            industry: self.pick(&["", "manufacturing", "retail"]),
            region: self.text(),
            company_size: self.i32(0, 5),
            budget_min: self.money(),
            budget_max: self.money(),
            source_channel: self.pick(&["referral", "sem", "exhibition"]),
            owner_id: self.pick(&["", "amy", "bob"]),
            status: self.i32(0, 6),
            next_follow_up_time: self.time(),
            notes: self.text(),
            ..Default::default()
        }
    }

    fn opportunity(&mut self, id: &str, account_id: &str) -> pb::Opportunity {
        pb::Opportunity {
            id: self.id(id),
            etag: self.pick(&[""]),
            account_id: self.id(account_id),
            name: self.text(),
            amount: self.money(),
            expected_close_date: self.date(),
            grade: self.i32(0, 4),
            team: self.bool().then(|| pb::Team {
                account_manager_id: self.pick(&["", "amy"]),
                solution_manager_id: self.pick(&["", "sol"]),
                delivery_manager_id: self.pick(&["", "dan"]),
                other_member_ids: self.texts(),
            }),
            competitors: self.texts(),
            win_loss_reason: self.text(),
            qualification: self.bool().then(|| pb::Qualification {
                is_real: self.bool(),
                can_compete: self.bool(),
                can_win: self.bool(),
                worth_it: self.bool(),
                notes: self.text(),
            }),
            solution_summary: self.text(),
            workload_person_days: self.i32(0, 100),
            quote: self.money(),
            ..Default::default()
        }
    }
}

/// What a client may be told about its own input; never a server fault.
fn check<T, R: Debug>(method: &str, request: &R, result: Result<T, tonic::Status>) {
    let Err(status) = result else { return };
    let fine = matches!(
        status.code(),
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Aborted
    );
    if !fine {
        let mut shown = format!("{request:?}");
        if shown.len() > 3_000 {
            let mut cut = 3_000;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
        }
        panic!("{method} answered {status:?} to {shown}");
    }
    assert!(
        status.message().len() < 2_000,
        "{method}: the message echoes the input"
    );
}

#[tokio::test]
async fn issue11_every_validator_answers_arbitrary_input_without_a_server_fault() {
    let suite = start_with(|s| {
        for limit in [&mut s.gateway.rate_limit, &mut s.server.rate_limit] {
            limit.requests_per_second = 0;
            limit.subject_requests_per_second = 0;
        }
    })
    .await;
    let token = suite.token("acme", "amy", &[Role::Sales, Role::Manager]);
    let mut ld = suite.leads_client(Some(&token));
    let mut op = suite.opportunities_client(Some(&token));

    // Real records, so that ids sometimes name something that exists.
    let lead_id = ld
        .create_lead(leads::CreateLeadRequest {
            lead: Some(lead("ACME Robotics", "+86 138 0013 8000")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
        .id;
    let account_id = op
        .create_account(pb::CreateAccountRequest {
            account: Some(pb::Account {
                name: "ACME Robotics".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .id;
    let opportunity_id = op
        .create_opportunity(pb::CreateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                account_id: account_id.clone(),
                name: "Line 3".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap()
        .id;

    let contact_id = op
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact {
                account_id: account_id.clone(),
                name: "Li Lei".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap()
        .id;

    let mut g = Gen::new();
    for _ in 0..CASES {
        let r = leads::CreateLeadRequest {
            request_id: g.request_id(),
            lead: Some(g.lead("")),
            on_duplicate: g.i32(0, 3),
        };
        check("CreateLead", &r, ld.create_lead(r.clone()).await);

        let r = leads::BatchCreateLeadsRequest {
            request_id: g.request_id(),
            leads: (0..g.sample(1..4usize)).map(|_| g.lead("")).collect(),
            on_duplicate: g.i32(0, 3),
        };
        check(
            "BatchCreateLeads",
            &r,
            ld.batch_create_leads(r.clone()).await,
        );

        let r = leads::UpdateLeadRequest {
            lead: Some(g.lead(&lead_id)),
            update_mask: g.mask(&["company", "phone", "email", "status", "notes", "budget_min"]),
        };
        check("UpdateLead", &r, ld.update_lead(r.clone()).await);

        let r = leads::GetLeadRequest { id: g.id(&lead_id) };
        check("GetLead", &r, ld.get_lead(r.clone()).await);

        let r = leads::ListLeadsRequest {
            page_size: g.i32(-1, 600),
            page_token: g.pick(&[""]),
            scope: g.i32(0, 3),
            status: g.i32(0, 6),
            source_channel: g.pick(&["", "referral"]),
            owner_id: g.pick(&["", "amy", "bob"]),
        };
        check("ListLeads", &r, ld.list_leads(r.clone()).await);

        let r = leads::LogInteractionRequest {
            request_id: g.request_id(),
            lead_id: g.id(&lead_id),
            interaction: Some(leads::Interaction {
                kind: g.i32(0, 7),
                occur_time: g.time(),
                notes: g.text(),
                ..Default::default()
            }),
        };
        check("LogInteraction", &r, ld.log_interaction(r.clone()).await);

        let r = leads::ListDueFollowUpsRequest {
            owner_id: g.pick(&["", "amy", "bob"]),
            due_before: g.time(),
            page_size: g.i32(-1, 600),
            page_token: g.pick(&[""]),
        };
        check(
            "ListDueFollowUps",
            &r,
            ld.list_due_follow_ups(r.clone()).await,
        );

        let r = leads::DisqualifyLeadRequest {
            id: g.id(&lead_id),
            etag: g.pick(&[""]),
            reason: g.text(),
        };
        check("DisqualifyLead", &r, ld.disqualify_lead(r.clone()).await);

        let r = pb::CreateAccountRequest {
            request_id: g.request_id(),
            account: Some(pb::Account {
                name: g.text(),
                registration_number: g.pick(&["", "91310000MA1FL0000X"]),
                industry: g.text(),
                region: g.text(),
                owner_id: g.pick(&["", "amy", "bob"]),
                ..Default::default()
            }),
        };
        check("CreateAccount", &r, op.create_account(r.clone()).await);

        let r = pb::ListAccountsRequest {
            page_size: g.i32(-1, 600),
            page_token: g.pick(&[""]),
            owner_id: g.pick(&["", "amy", "bob"]),
        };
        check("ListAccounts", &r, op.list_accounts(r.clone()).await);

        let r = pb::CreateContactRequest {
            request_id: g.request_id(),
            contact: Some(pb::Contact {
                account_id: g.id(&account_id),
                name: g.text(),
                title: g.text(),
                phone: g.pick(&["", "+86 138 0013 8000"]),
                email: g.pick(&["", "li@acme.cn"]),
                ..Default::default()
            }),
        };
        check("CreateContact", &r, op.create_contact(r.clone()).await);

        let r = pb::CreateOpportunityRequest {
            request_id: g.request_id(),
            opportunity: Some(g.opportunity("", &account_id)),
        };
        check(
            "CreateOpportunity",
            &r,
            op.create_opportunity(r.clone()).await,
        );

        let r = pb::UpdateOpportunityRequest {
            opportunity: Some(g.opportunity(&opportunity_id, &account_id)),
            update_mask: g.mask(&["name", "amount", "expected_close_date", "team", "quote"]),
        };
        check(
            "UpdateOpportunity",
            &r,
            op.update_opportunity(r.clone()).await,
        );

        let r = pb::ListOpportunitiesRequest {
            page_size: g.i32(-1, 600),
            page_token: g.pick(&[""]),
            stage: g.i32(0, 9),
            account_id: g.id(&account_id),
            owner_id: g.pick(&["", "amy", "bob"]),
        };
        check(
            "ListOpportunities",
            &r,
            op.list_opportunities(r.clone()).await,
        );

        let r = pb::AdvanceStageRequest {
            id: g.id(&opportunity_id),
            etag: g.pick(&[""]),
            target_stage: g.i32(0, 9),
            override_reason: g.text(),
        };
        check("AdvanceStage", &r, op.advance_stage(r.clone()).await);

        let r = pb::SetDecisionChainMemberRequest {
            opportunity_id: g.id(&opportunity_id),
            member: Some(pb::DecisionChainMember {
                contact_id: g.id(&contact_id),
                role: g.i32(0, 6),
                relationship: g.i32(0, 6),
                solution_acceptance: g.i32(0, 6),
                price_acceptance: g.i32(0, 6),
            }),
        };
        check(
            "SetDecisionChainMember",
            &r,
            op.set_decision_chain_member(r.clone()).await,
        );

        let r = pb::LogActivityRequest {
            request_id: g.request_id(),
            opportunity_id: g.id(&opportunity_id),
            activity: Some(pb::Activity {
                kind: g.i32(0, 7),
                contact_ids: (0..g.sample(0..3usize))
                    .map(|_| g.id(&contact_id))
                    .collect(),
                occur_time: g.time(),
                notes: g.text(),
                ..Default::default()
            }),
        };
        check("LogActivity", &r, op.log_activity(r.clone()).await);

        let r = pb::LogWorkHoursRequest {
            request_id: g.request_id(),
            opportunity_id: g.id(&opportunity_id),
            work_hours: Some(pb::WorkHours {
                work_date: g.date(),
                minutes: g.i32(1, 600),
                notes: g.text(),
                ..Default::default()
            }),
        };
        check("LogWorkHours", &r, op.log_work_hours(r.clone()).await);

        let r = pb::RequestApprovalRequest {
            request_id: g.request_id(),
            kind: g.i32(0, 7),
            opportunity_id: g.id(&opportunity_id),
            reason: g.text(),
        };
        check("RequestApproval", &r, op.request_approval(r.clone()).await);

        let r = pb::ListApprovalsRequest {
            page_size: g.i32(-1, 600),
            page_token: g.pick(&[""]),
            subject_id: g.id(&opportunity_id),
            status: g.i32(0, 6),
        };
        check("ListApprovals", &r, op.list_approvals(r.clone()).await);

        let r = pb::GetForecastRequest {
            owner_id: g.pick(&["", "amy", "bob"]),
        };
        check("GetForecast", &r, op.get_forecast(r.clone()).await);
    }
}
