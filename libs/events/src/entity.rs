//! The tables of the event machinery, as sea-orm entities.

/// One event in the outbox: appended unnumbered in the transaction of its
/// change, numbered by the sequencer after it committed.
pub mod outbox_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_events")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The stream position; `None` until the sequencer numbers the row.
        pub sequence: Option<i64>,
        pub tenant_id: String,
        #[sea_orm(column_name = "type")]
        pub event_type: String,
        pub subject_id: String,
        /// When it happened, Unix microseconds.
        pub time: i64,
        pub traceparent: String,
        pub tracestate: String,
        /// The encoded `google.protobuf.Any`.
        pub payload: Vec<u8>,
        /// When it was appended, Unix microseconds: numbering order and
        /// retention go by it.
        pub create_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The single row (id 1) holding the stream's counter and retention mark.
pub mod outbox_head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_head")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// The highest sequence handed out.
        pub last_sequence: i64,
        /// The lowest sequence that may still be kept: every event before
        /// it was deleted.
        pub oldest_retained: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How far a consumer has applied another service's stream, kept in the
/// consumer's own database.
pub mod event_cursor {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_cursors")]
    pub struct Model {
        /// The consumer's name, e.g. "opportunities.lead-conversions".
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        /// The producing service, e.g. "leads".
        #[sea_orm(primary_key, auto_increment = false)]
        pub source: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        /// The last sequence applied (0: none yet).
        pub sequence: i64,
        pub update_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An event a local consumer failed to apply, parked with its own retry
/// schedule so that the events after it (of every tenant) go on. A copy of
/// the event: retention does not touch it.
pub mod event_retry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_retries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub sequence: i64,
        /// Leads the table's key (docs/scaling.md); named here so that an
        /// insert's `ON CONFLICT` names the key the table has.
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(column_name = "type")]
        pub event_type: String,
        pub subject_id: String,
        pub time: i64,
        pub traceparent: String,
        pub tracestate: String,
        pub payload: Vec<u8>,
        pub attempts: i32,
        /// Unix microseconds.
        pub next_attempt_time: i64,
        pub last_error: String,
        pub first_failure_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An event a local consumer gave up on: its handler refused it for good
/// `max_attempts` times. Kept for an operator, never retried by itself.
pub mod event_dead_letter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub sequence: i64,
        /// Leads the table's key (docs/scaling.md); named here so that an
        /// insert's `ON CONFLICT` names the key the table has.
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(column_name = "type")]
        pub event_type: String,
        pub subject_id: String,
        pub time: i64,
        pub traceparent: String,
        pub tracestate: String,
        pub payload: Vec<u8>,
        pub attempts: i32,
        pub last_error: String,
        pub first_failure_time: i64,
        pub dead_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
