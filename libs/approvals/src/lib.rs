//! The approval chain engine shared by the services that need a decision
//! before something may happen (opportunities, contracts).
//!
//! An approval asks an ordered chain of steps, one role each. The current
//! step is decided by a holder of its role, or by an integration (the OA
//! system) on behalf of a named person; nobody decides their own request.
//! A rejection ends the chain, the last approval approves it, and a decided
//! approval never changes again. A tenant's [`Policy`] separates duties:
//! one person decides at most one step of an approval (unless the tenant
//! turns it off), only the integrations it names decide for others, and
//! the person an integration names must hold the step's role in the
//! tenant's directory of approvers. Tenants add steps with [`StepRule`]s (an
//! amount over a threshold adds a finance step, say).
//!
//! The engine knows nothing of what is approved: the subject is an opaque
//! id, and the service's own kind of approval (`K`) says what the id names.
//! What an approved approval does to its subject is the service's rule.
//!
//! Plain Rust: no gRPC, no SQL.

mod chain;

use std::collections::BTreeMap;

use crm_types::{Actor, Role};
use serde::{Deserialize, Serialize};

pub use chain::{Facts, Quantity, StepRule, chain};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    /// Its subject changed after it was asked for (a quote under review
    /// edited): it no longer counts, whatever it was.
    Voided,
}

/// What a decider says to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::Pending,
        Status::Approved,
        Status::Rejected,
        Status::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| s.as_str() == text)
    }

    /// Pending or approved: what a voiding change still has to void.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Pending | Status::Approved)
    }
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the chain and, once decided, who decided it how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub role: Role,
    pub decision: Option<Decision>,
    /// The caller who decided: the person, or the integration acting for one.
    pub decider_id: String,
    /// The person an integration decided for; empty when the person decided.
    pub on_behalf_of: String,
    pub decide_time: Option<i64>,
    pub comment: String,
}

impl Step {
    fn open(role: Role) -> Step {
        Step {
            role,
            decision: None,
            decider_id: String::new(),
            on_behalf_of: String::new(),
            decide_time: None,
            comment: String::new(),
        }
    }

    /// The person who decided: the one an integration named, or the caller.
    pub fn person(&self) -> &str {
        if self.on_behalf_of.is_empty() {
            &self.decider_id
        } else {
            &self.on_behalf_of
        }
    }

    /// Who decided, as an audit trail says it: `oa-system for wang`.
    pub fn decided_by(&self) -> String {
        if self.on_behalf_of.is_empty() {
            self.decider_id.clone()
        } else {
            format!("{} for {}", self.decider_id, self.on_behalf_of)
        }
    }
}

/// An approval of kind `K` (the service's own kinds) about the subject
/// `subject_id`, with whatever the service keeps beside it in `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval<K, D = ()> {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub kind: K,
    /// The id of what is approved; `kind` says what it names.
    pub subject_id: String,
    pub requester_id: String,
    pub status: Status,
    pub steps: Vec<Step>,
    pub current_step: usize,
    pub reason: String,
    pub detail: D,
    pub create_time: i64,
    pub update_time: i64,
}

/// What a request for an approval names.
#[derive(Debug, Clone)]
pub struct Request<'a, K> {
    pub id: String,
    pub tenant: &'a str,
    pub kind: K,
    pub subject_id: &'a str,
    pub requester: &'a Actor,
    /// The roles of the steps, in order (see [`chain`]).
    pub chain: &'a [Role],
    pub reason: &'a str,
}

/// Whether people holding `role` decide approval steps, so that a chain
/// step or an approver may name it. `internal` is the services' own
/// identity and `integration` a system that decides only for a person it
/// names; neither is a person's role, so a step of theirs could never be
/// decided. `service` staff may not call a decision at all.
pub fn decides_steps(role: Role) -> bool {
    !matches!(role, Role::Internal | Role::Integration | Role::Service)
}

/// A tenant's separation of duties, shared by every approval it decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Whether one person may decide more than one step of an approval
    /// (off by default: a manager who also holds finance decides one step).
    pub allow_repeat_deciders: bool,
    /// The integrations (token subjects) that may decide for a person; no
    /// other integration decides anything. Empty: none.
    pub integration_subjects: Vec<String>,
    /// The tenant's directory of approvers: the roles each person an
    /// integration may name holds. A named person decides only the steps of
    /// a role listed here.
    pub approvers: BTreeMap<String, Vec<Role>>,
}

impl Policy {
    /// Whether the directory lists `person` with `role`.
    pub fn approver_holds(&self, person: &str, role: Role) -> bool {
        self.approvers
            .get(person)
            .is_some_and(|roles| roles.contains(&role))
    }
}

/// A decision of the current step, as a caller gives it.
#[derive(Debug, Clone, Copy)]
pub struct Decide<'a> {
    pub actor: &'a Actor,
    pub decision: Decision,
    pub comment: &'a str,
    /// Required when an integration decides: the person in the OA system.
    pub on_behalf_of: &'a str,
    /// When the subject names its decider (the team's delivery manager
    /// reviews the team's quote), only that person may decide.
    pub only: Option<&'a str>,
    /// The tenant's separation of duties.
    pub policy: &'a Policy,
}

/// What a decision did to the approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The next step now awaits its decision.
    Advanced,
    /// The last step approved: the approval is approved.
    Approved,
    /// A step rejected: the chain ends there.
    Rejected,
}

impl Decided {
    /// The approval's final status, if this decision ended the chain.
    pub fn final_status(self) -> Option<Status> {
        match self {
            Decided::Advanced => None,
            Decided::Approved => Some(Status::Approved),
            Decided::Rejected => Some(Status::Rejected),
        }
    }
}

/// A decision the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval {id} is {status} and can no longer change")]
    Closed { id: String, status: Status },
    #[error("the approval has no open step")]
    NoOpenStep,
    #[error("required when an integration decides: the person in the OA system")]
    OnBehalfOfRequired,
    #[error("step {} of {steps} is decided by the {role} role", .step + 1)]
    RoleRequired {
        step: usize,
        steps: usize,
        role: Role,
    },
    #[error("nobody decides their own request")]
    SelfApproval,
    #[error("only {0} decides this approval")]
    NotTheNamedDecider(String),
    #[error("{0} already decided a step of this approval")]
    RepeatDecider(String),
    #[error("{0} is not an integration this tenant lets decide approvals")]
    IntegrationNotAllowed(String),
    #[error("{person} is not listed as holding the {role} role in the tenant's approvers")]
    NotAnApprover { person: String, role: Role },
}

impl<K, D: Default> Approval<K, D> {
    /// A new pending approval with one open step per role of the chain.
    pub fn new(request: Request<'_, K>, now: i64) -> Self {
        Approval {
            id: request.id,
            tenant: request.tenant.to_owned(),
            version: 1,
            kind: request.kind,
            subject_id: request.subject_id.to_owned(),
            requester_id: request.requester.id.clone(),
            status: Status::Pending,
            steps: request.chain.iter().copied().map(Step::open).collect(),
            current_step: 0,
            reason: request.reason.trim().to_owned(),
            detail: D::default(),
            create_time: now,
            update_time: now,
        }
    }
}

impl<K, D> Approval<K, D> {
    /// The role whose holders decide the open step, while pending: who,
    /// beside those who see the subject, may read the approval.
    pub fn awaiting(&self) -> Option<Role> {
        if self.status != Status::Pending {
            return None;
        }
        self.steps.get(self.current_step).map(|s| s.role)
    }

    /// The step decided last, if any.
    pub fn last_decided(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.decision.is_some())
    }

    /// The person who decides the current step for `decide`: the caller
    /// holding the step's role, or the person an integration names.
    fn person<'a>(&self, decide: &Decide<'a>) -> Result<&'a str, ApprovalError> {
        if self.status != Status::Pending {
            return Err(ApprovalError::Closed {
                id: self.id.clone(),
                status: self.status,
            });
        }
        let step = self
            .steps
            .get(self.current_step)
            .ok_or(ApprovalError::NoOpenStep)?;
        let person = if decide.actor.has(Role::Integration) {
            let policy = decide.policy;
            if !policy.integration_subjects.contains(&decide.actor.id) {
                return Err(ApprovalError::IntegrationNotAllowed(
                    decide.actor.id.clone(),
                ));
            }
            let named = decide.on_behalf_of.trim();
            if named.is_empty() {
                return Err(ApprovalError::OnBehalfOfRequired);
            }
            if !policy.approver_holds(named, step.role) {
                return Err(ApprovalError::NotAnApprover {
                    person: named.to_owned(),
                    role: step.role,
                });
            }
            named
        } else if decide.actor.has(step.role) {
            decide.actor.id.as_str()
        } else {
            return Err(ApprovalError::RoleRequired {
                step: self.current_step,
                steps: self.steps.len(),
                role: step.role,
            });
        };
        if person == self.requester_id {
            return Err(ApprovalError::SelfApproval);
        }
        let decided_before = self
            .steps
            .iter()
            .take(self.current_step)
            .any(|s| s.decision.is_some() && s.person() == person);
        if decided_before && !decide.policy.allow_repeat_deciders {
            return Err(ApprovalError::RepeatDecider(person.to_owned()));
        }
        match decide.only {
            Some(only) if only != person => Err(ApprovalError::NotTheNamedDecider(only.to_owned())),
            _ => Ok(person),
        }
    }

    /// Decides the current step. A refused decision changes nothing.
    pub fn decide(&mut self, decide: Decide<'_>, now: i64) -> Result<Decided, ApprovalError> {
        let person = self.person(&decide)?;
        let index = self.current_step;
        let last = index + 1 == self.steps.len();
        let step = self.steps.get_mut(index).ok_or(ApprovalError::NoOpenStep)?;
        step.decision = Some(decide.decision);
        step.decider_id = decide.actor.id.clone();
        step.on_behalf_of = if person == decide.actor.id {
            String::new()
        } else {
            person.to_owned()
        };
        step.decide_time = Some(now);
        step.comment = decide.comment.trim().to_owned();
        self.version += 1;
        self.update_time = now;
        Ok(match decide.decision {
            Decision::Reject => {
                self.status = Status::Rejected;
                Decided::Rejected
            }
            Decision::Approve if last => {
                self.status = Status::Approved;
                Decided::Approved
            }
            Decision::Approve => {
                self.current_step += 1;
                Decided::Advanced
            }
        })
    }

    /// Voids a pending or approved approval whose subject changed since it
    /// was asked for. Returns whether it changed.
    pub fn void(&mut self, now: i64) -> bool {
        if !self.status.is_live() {
            return false;
        }
        self.status = Status::Voided;
        self.version += 1;
        self.update_time = now;
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn actor(id: &str, roles: &[Role]) -> Actor {
        Actor::new(id, roles.to_vec())
    }

    fn bid(requester: &Actor) -> Approval<&'static str> {
        Approval::new(
            Request {
                id: "a1".into(),
                tenant: "t",
                kind: "bid_approval",
                subject_id: "o1",
                requester,
                chain: &[Role::Manager, Role::Finance],
                reason: " bid ",
            },
            0,
        )
    }

    /// The OA system bound to the tenant, and wang, a manager in its directory.
    static OA_POLICY: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(|| Policy {
        integration_subjects: vec!["oa-system".into()],
        approvers: [
            ("wang.manager".to_owned(), vec![Role::Manager]),
            ("amy".to_owned(), vec![Role::Manager]),
            ("fei".to_owned(), vec![Role::Finance]),
        ]
        .into(),
        ..Policy::default()
    });

    fn by<'a>(actor: &'a Actor, decision: Decision) -> Decide<'a> {
        Decide {
            actor,
            decision,
            comment: "",
            on_behalf_of: "",
            only: None,
            policy: &OA_POLICY,
        }
    }

    #[test]
    fn a_request_opens_one_pending_step_per_role() {
        let a = bid(&actor("amy", &[Role::Sales]));
        assert_eq!(
            (
                a.status,
                a.current_step,
                a.requester_id.as_str(),
                a.reason.as_str()
            ),
            (Status::Pending, 0, "amy", "bid")
        );
        let roles: Vec<Role> = a.steps.iter().map(|s| s.role).collect();
        assert_eq!(roles, [Role::Manager, Role::Finance]);
        assert!(a.steps.iter().all(|s| s.decision.is_none()));
    }

    #[test]
    fn steps_are_decided_in_order_by_their_roles() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        let fay = actor("fay", &[Role::Finance]);
        assert_eq!(
            a.decide(by(&fay, Decision::Approve), 1),
            Err(ApprovalError::RoleRequired {
                step: 0,
                steps: 2,
                role: Role::Manager
            })
        );
        assert_eq!(a.version, 1, "a refused decision changes nothing");
        let boss = actor("boss", &[Role::Manager]);
        assert_eq!(
            a.decide(by(&boss, Decision::Approve), 1),
            Ok(Decided::Advanced)
        );
        assert_eq!((a.current_step, a.status), (1, Status::Pending));
        assert_eq!(a.awaiting(), Some(Role::Finance));
        assert_eq!(
            a.decide(by(&fay, Decision::Approve), 2),
            Ok(Decided::Approved)
        );
        assert_eq!((a.status, a.version), (Status::Approved, 3));
        assert_eq!(a.awaiting(), None, "a decided approval awaits nobody");
        assert_eq!(a.last_decided().unwrap().decider_id, "fay");
    }

    #[test]
    fn a_decided_approval_never_changes() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        let boss = actor("boss", &[Role::Manager, Role::Finance]);
        a.decide(by(&boss, Decision::Reject), 1).unwrap();
        let decided = a.clone();
        assert!(matches!(
            a.decide(by(&boss, Decision::Approve), 2),
            Err(ApprovalError::Closed {
                status: Status::Rejected,
                ..
            })
        ));
        assert_eq!(a, decided);
    }

    #[test]
    fn a_rejection_ends_the_chain() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        let boss = actor("boss", &[Role::Manager]);
        assert_eq!(
            a.decide(by(&boss, Decision::Reject), 1),
            Ok(Decided::Rejected)
        );
        assert_eq!((a.status, a.current_step), (Status::Rejected, 0));
        assert!(
            a.steps[1].decision.is_none(),
            "the finance step is never asked"
        );
        let fay = actor("fay", &[Role::Finance]);
        assert!(a.decide(by(&fay, Decision::Approve), 2).is_err());
    }

    #[test]
    fn nobody_decides_their_own_request() {
        let amy = actor("amy", &[Role::Sales, Role::Manager]);
        let mut a = bid(&amy);
        assert_eq!(
            a.decide(by(&amy, Decision::Approve), 1),
            Err(ApprovalError::SelfApproval)
        );
        let oa = actor("oa-system", &[Role::Integration]);
        let for_amy = Decide {
            on_behalf_of: "amy",
            ..by(&oa, Decision::Approve)
        };
        assert_eq!(a.decide(for_amy, 1), Err(ApprovalError::SelfApproval));
    }

    #[test]
    fn an_integration_decides_for_a_named_person() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        let oa = actor("oa-system", &[Role::Integration]);
        let unnamed = Decide {
            on_behalf_of: " ",
            ..by(&oa, Decision::Approve)
        };
        assert_eq!(a.decide(unnamed, 1), Err(ApprovalError::OnBehalfOfRequired));
        let named = Decide {
            on_behalf_of: "wang.manager",
            comment: " budget ",
            ..by(&oa, Decision::Reject)
        };
        assert_eq!(a.decide(named, 1), Ok(Decided::Rejected));
        let step = &a.steps[0];
        assert_eq!(
            (
                step.decider_id.as_str(),
                step.on_behalf_of.as_str(),
                step.comment.as_str()
            ),
            ("oa-system", "wang.manager", "budget")
        );
        assert_eq!(step.decided_by(), "oa-system for wang.manager");
    }

    #[test]
    fn one_person_decides_one_step_unless_the_tenant_allows_more() {
        let boss = actor("boss", &[Role::Manager, Role::Finance]);
        let mut a = bid(&actor("amy", &[Role::Sales]));
        assert_eq!(
            a.decide(by(&boss, Decision::Approve), 1),
            Ok(Decided::Advanced)
        );
        assert_eq!(
            a.decide(by(&boss, Decision::Approve), 2),
            Err(ApprovalError::RepeatDecider("boss".into()))
        );
        // The same person through the OA system is still the same person.
        let oa = actor("oa-system", &[Role::Integration]);
        let mut b = bid(&actor("amy", &[Role::Sales]));
        let for_wang = Decide {
            on_behalf_of: "wang.manager",
            ..by(&oa, Decision::Approve)
        };
        b.decide(for_wang, 1).unwrap();
        let wang = actor("wang.manager", &[Role::Manager, Role::Finance]);
        assert_eq!(
            b.decide(by(&wang, Decision::Approve), 2),
            Err(ApprovalError::RepeatDecider("wang.manager".into()))
        );
        let lenient = Policy {
            allow_repeat_deciders: true,
            ..Policy::default()
        };
        let again = Decide {
            policy: &lenient,
            ..by(&boss, Decision::Approve)
        };
        assert_eq!(a.decide(again, 2), Ok(Decided::Approved));
    }

    #[test]
    fn only_bound_integrations_decide_and_only_for_holders_of_the_role() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        let rogue = actor("crm-sync", &[Role::Integration]);
        let for_wang = |actor| Decide {
            on_behalf_of: "wang.manager",
            ..by(actor, Decision::Approve)
        };
        assert_eq!(
            a.decide(for_wang(&rogue), 1),
            Err(ApprovalError::IntegrationNotAllowed("crm-sync".into()))
        );
        let oa = actor("oa-system", &[Role::Integration]);
        let for_fei = Decide {
            on_behalf_of: "fei",
            ..by(&oa, Decision::Approve)
        };
        assert_eq!(
            a.decide(for_fei, 1),
            Err(ApprovalError::NotAnApprover {
                person: "fei".into(),
                role: Role::Manager
            }),
            "fei is finance, the step is the manager's"
        );
        let invented = Decide {
            on_behalf_of: "nobody",
            ..by(&oa, Decision::Approve)
        };
        assert!(matches!(
            a.decide(invented, 1),
            Err(ApprovalError::NotAnApprover { .. })
        ));
        assert_eq!(a.version, 1, "refusals change nothing");
        assert_eq!(a.decide(for_wang(&oa), 1), Ok(Decided::Advanced));
        assert_eq!(a.decide(for_fei, 2), Ok(Decided::Approved));
    }

    #[test]
    fn a_named_decider_is_the_only_one() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        let dan = actor("dan", &[Role::Manager]);
        let only_dora = |actor| Decide {
            only: Some("dora"),
            ..by(actor, Decision::Approve)
        };
        assert_eq!(
            a.decide(only_dora(&dan), 1),
            Err(ApprovalError::NotTheNamedDecider("dora".into()))
        );
        let dora = actor("dora", &[Role::Manager]);
        assert_eq!(a.decide(only_dora(&dora), 1), Ok(Decided::Advanced));
    }

    #[test]
    fn only_a_live_approval_is_voided() {
        let mut a = bid(&actor("amy", &[Role::Sales]));
        assert!(a.void(5));
        assert_eq!((a.status, a.version, a.update_time), (Status::Voided, 2, 5));
        assert!(!a.void(6));
        assert_eq!(a.version, 2);
    }

    #[test]
    fn steps_store_as_before() {
        // The services keep steps as JSON: the field names are a format.
        let step = Step {
            role: Role::Finance,
            decision: Some(Decision::Approve),
            decider_id: "fay".into(),
            on_behalf_of: String::new(),
            decide_time: Some(7),
            comment: "ok".into(),
        };
        let text = serde_json::to_string(&step).unwrap();
        assert_eq!(
            text,
            r#"{"role":"finance","decision":"approve","decider_id":"fay","on_behalf_of":"","decide_time":7,"comment":"ok"}"#
        );
        assert_eq!(serde_json::from_str::<Step>(&text).unwrap(), step);
    }

    #[test]
    fn only_peoples_deciding_roles_hold_steps() {
        assert!(decides_steps(Role::Manager) && decides_steps(Role::Finance));
        for role in [Role::Internal, Role::Integration, Role::Service] {
            assert!(!decides_steps(role), "{role}");
        }
    }
}
