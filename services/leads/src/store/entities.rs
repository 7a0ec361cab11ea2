//! sea-orm entities of the leads schema. Times are Unix microseconds.

pub mod lead {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub version: i64,
        pub company: String,
        pub contact_name: String,
        pub phone: String,
        /// Normalised phone; unique per tenant.
        pub phone_key: Option<String>,
        pub email: String,
        /// Normalised email; unique per tenant.
        pub email_key: Option<String>,
        /// Normalised company + contact; unique per tenant.
        pub name_key: Option<String>,
        pub industry: String,
        pub region: String,
        pub company_size: i32,
        /// JSON of `domain::Budget`.
        pub budget: Option<String>,
        pub source_channel: String,
        pub owner_id: Option<String>,
        pub status: String,
        pub score: i32,
        /// JSON of `domain::ScoreBreakdown`.
        pub score_breakdown: String,
        pub last_follow_up_time: Option<i64>,
        pub next_follow_up_time: Option<i64>,
        pub follow_up_deadline: Option<i64>,
        /// min(follow_up_deadline, next_follow_up_time): the due list's index key.
        pub attention_time: Option<i64>,
        pub notes: String,
        pub disqualify_reason: Option<String>,
        pub opportunity_id: Option<String>,
        pub account_id: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
        pub creator: String,
        pub updater: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod interaction {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "interactions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub lead_id: String,
        pub kind: String,
        pub occur_time: i64,
        pub notes: String,
        pub creator: String,
        pub create_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lead_claim {
    use sea_orm::entity::prelude::*;

    /// One claim from the pool, counted against the daily limit.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lead_claims")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub claimer: String,
        pub lead_id: String,
        pub claim_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
