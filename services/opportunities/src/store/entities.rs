//! sea-orm entities of the opportunities schema. Times are Unix microseconds;
//! lists and small structures (team members, steps) are JSON text.

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub version: i64,
        pub name: String,
        pub name_key: String,
        pub registration_number: String,
        pub industry: String,
        pub region: String,
        pub owner_id: String,
        pub pending_approval_id: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
        pub creator: String,
        pub updater: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod contact {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contacts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub account_id: String,
        pub name: String,
        pub name_key: String,
        pub title: String,
        pub phone: String,
        pub email: String,
        pub create_time: i64,
        pub creator: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod opportunity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opportunities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub version: i64,
        pub account_id: String,
        pub name: String,
        pub amount_currency: Option<String>,
        pub amount_units: Option<i64>,
        pub amount_nanos: Option<i32>,
        pub expected_close_date: Option<String>,
        pub grade: Option<String>,
        pub account_manager_id: String,
        pub solution_manager_id: String,
        pub delivery_manager_id: String,
        pub other_members: String,
        pub competitors: String,
        pub stage: String,
        pub win_loss_reason: String,
        pub qualification: Option<String>,
        pub solution_summary: String,
        pub workload_person_days: Option<i32>,
        pub quote: Option<String>,
        pub review_approval_id: Option<String>,
        pub review_status: Option<String>,
        pub lead_id: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
        pub creator: String,
        pub updater: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One person on one opportunity's team: what the team filter of a list
/// matches, exactly.
pub mod team_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opportunity_team_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub opportunity_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub person_id: String,
        pub tenant_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decision_chain")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub opportunity_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub contact_id: String,
        pub tenant_id: String,
        pub role: String,
        pub relationship: i32,
        pub solution_acceptance: i32,
        pub price_acceptance: i32,
        pub update_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "activities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub opportunity_id: String,
        pub kind: String,
        pub contact_ids: String,
        pub occur_time: i64,
        pub notes: String,
        pub creator: String,
        pub create_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod approval {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "approvals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub version: i64,
        pub kind: String,
        pub subject_id: String,
        pub requester_id: String,
        pub status: String,
        pub steps: String,
        pub current_step: i32,
        pub reason: String,
        pub proposed: String,
        pub snapshot: String,
        /// The role the open step awaits (see `domain::awaiting_role`):
        /// who beside the subject's readers lists it.
        pub awaiting_role: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod work_hours {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "work_hours")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub opportunity_id: String,
        pub person_id: String,
        pub work_date: String,
        pub minutes: i32,
        pub notes: String,
        pub create_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod violation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stage_violations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub opportunity_id: String,
        pub from_stage: String,
        pub to_stage: String,
        pub missing: String,
        pub manager_id: String,
        pub reason: String,
        pub time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
