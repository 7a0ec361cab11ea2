//! sea-orm entities of the contracts schema. Times are Unix microseconds,
//! dates `YYYY-MM-DD` (which sort like the dates). A contract is one JSON
//! document (`body`) beside the columns its lists, inbox and timers filter
//! on, which are derived from it on every write.

pub mod contract {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contracts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub version: i64,
        pub opportunity_id: String,
        pub family_id: String,
        pub contract_version: i32,
        pub account_id: String,
        pub owner_id: String,
        pub status: String,
        pub start_date: Option<String>,
        pub end_date: Option<String>,
        pub renewal_due: Option<String>,
        pub pending_role: Option<String>,
        pub pending_assignee: String,
        pub pending_since: Option<i64>,
        pub pending_expected: Option<i64>,
        pub pending_overdue: bool,
        pub receivable_due: Option<String>,
        pub create_time: i64,
        pub update_time: i64,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Who sees a contract as theirs (owner and team), for lists.
pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contract_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub member_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub contract_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The receivables view: one row per payment milestone, rewritten with
/// its contract.
pub mod milestone {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payment_milestones")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub contract_id: String,
        pub account_id: String,
        pub status: String,
        pub due_date: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
