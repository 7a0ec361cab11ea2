use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The shortest retention accepted: consumers that restart or are redeployed
/// need some margin to catch up before their cursor expires.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// A service's `[<service>.events]` section: how long events are kept and
/// how the stream is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// How long numbered events are kept; a cursor older than that is
    /// refused with CURSOR_EXPIRED. At least one hour.
    #[serde(
        serialize_with = "crm_config::duration::serialize",
        deserialize_with = "retention"
    )]
    pub retention: Duration,
    /// How often the sequencer looks for events committed by other
    /// processes (its own process's commits wake it at once).
    #[serde(with = "crm_config::duration")]
    pub sequencer_tick: Duration,
    /// How often expired events are deleted.
    #[serde(with = "crm_config::duration")]
    pub prune_interval: Duration,
    /// A subscriber's stream that has been quiet this long gets a heartbeat.
    #[serde(with = "crm_config::duration")]
    pub heartbeat_interval: Duration,
    /// Events read per query while replaying.
    pub page_size: u64,
    /// Events queued per subscriber: a slow subscriber slows only its own
    /// reader, and the server holds at most this many of its events.
    pub subscriber_buffer: usize,
    /// Bytes of events held per subscriber (queued, and read ahead from the
    /// database): large events fill it long before `subscriber_buffer`.
    pub subscriber_buffer_bytes: usize,
    /// A subscriber that takes nothing from a full buffer for this long is
    /// dropped with RESOURCE_EXHAUSTED (SUBSCRIBER_STALLED), freeing what
    /// the server held for it.
    #[serde(with = "crm_config::duration")]
    pub subscriber_stall_timeout: Duration,
    /// Attempts of an event that a local consumer's handler refuses for
    /// good before it goes to the dead letters (`event_dead_letters`).
    pub local_max_attempts: u32,
    /// Pages of the outbox all of the service's subscribers read from the
    /// database at once: keep it under `store.max_connections`, so calls
    /// always find a connection however many streams are open.
    pub subscriber_reads: usize,
    /// Of those, what one tenant's subscribers may read at once: a tenant
    /// with many streams over a busy outbox gets its events later, without
    /// holding up other tenants' streams or calls.
    pub tenant_subscriber_reads: usize,
    /// Bytes of events a second one tenant's Subscribe streams are sent
    /// together (a second's worth may go at once). Sending is most of a
    /// stream's cost: without a budget one tenant's many streams replaying
    /// a busy outbox take the processor other tenants' calls need. The
    /// suite's own every-tenant subscribers are not paced. 0: no budget.
    pub tenant_bytes_per_second: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 24 * 3600),
            sequencer_tick: Duration::from_secs(1),
            prune_interval: Duration::from_secs(3600),
            heartbeat_interval: Duration::from_secs(10),
            page_size: 500,
            subscriber_buffer: 64,
            subscriber_buffer_bytes: 1 << 20,
            subscriber_stall_timeout: Duration::from_secs(60),
            local_max_attempts: 5,
            subscriber_reads: 4,
            tenant_subscriber_reads: 2,
            tenant_bytes_per_second: 4 << 20,
        }
    }
}

/// A setting of [`EventsConfig`] out of range; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("events.{key}: {message}")]
pub struct InvalidConfig {
    pub key: &'static str,
    pub message: String,
}

impl EventsConfig {
    /// Checks what deserialisation cannot: a config built in code, too.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let invalid = |key, message: &str| {
            Err(InvalidConfig {
                key,
                message: message.to_owned(),
            })
        };
        if let Err(message) = check_retention(self.retention) {
            return invalid("retention", &message);
        }
        for (key, value) in [
            ("sequencer_tick", self.sequencer_tick),
            ("prune_interval", self.prune_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            ("subscriber_stall_timeout", self.subscriber_stall_timeout),
        ] {
            if value.is_zero() {
                return invalid(key, "must be longer than zero");
            }
        }
        if self.page_size == 0 {
            return invalid("page_size", "must be at least 1");
        }
        if self.subscriber_buffer == 0 {
            return invalid("subscriber_buffer", "must be at least 1");
        }
        for (key, value) in [
            ("subscriber_reads", self.subscriber_reads),
            ("tenant_subscriber_reads", self.tenant_subscriber_reads),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.local_max_attempts == 0 {
            return invalid("local_max_attempts", "must be at least 1");
        }
        if (1..1024).contains(&self.tenant_bytes_per_second) {
            return invalid(
                "tenant_bytes_per_second",
                "must be 0 (no budget) or at least 1 KiB",
            );
        }
        // The byte budget is counted in semaphore permits (u32).
        if self.subscriber_buffer_bytes < 1024
            || u32::try_from(self.subscriber_buffer_bytes).is_err()
        {
            return invalid("subscriber_buffer_bytes", "must be from 1 KiB to 4 GiB");
        }
        Ok(())
    }
}

fn check_retention(retention: Duration) -> Result<(), String> {
    if retention < MIN_RETENTION {
        return Err(format!(
            "{} is too short: keep events for at least 1h",
            crm_config::duration::format(retention)
        ));
    }
    Ok(())
}

// Refused while the configuration is read, so that start-up stops with the
// key's name.
fn retention<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let retention = crm_config::duration::deserialize(d)?;
    check_retention(retention).map_err(serde::de::Error::custom)?;
    Ok(retention)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_are_valid_and_keep_a_week() {
        let cfg = EventsConfig::default();
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(cfg.retention, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn retention_under_an_hour_is_refused_naming_the_key() {
        let err = crm_config::load_from::<EventsConfig>(
            None,
            [("CRM__RETENTION".to_owned(), "30m".to_owned())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("retention"), "{err}");
        let cfg = EventsConfig {
            retention: Duration::from_secs(60),
            ..EventsConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().key, "retention");
        let ok = crm_config::load_from::<EventsConfig>(
            None,
            [("CRM__RETENTION".to_owned(), "30d".to_owned())],
        )
        .unwrap();
        assert_eq!(ok.retention, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn zero_intervals_and_sizes_are_refused() {
        for cfg in [
            EventsConfig {
                heartbeat_interval: Duration::ZERO,
                ..EventsConfig::default()
            },
            EventsConfig {
                page_size: 0,
                ..EventsConfig::default()
            },
            EventsConfig {
                subscriber_buffer: 0,
                ..EventsConfig::default()
            },
            EventsConfig {
                subscriber_buffer_bytes: 10,
                ..EventsConfig::default()
            },
            EventsConfig {
                local_max_attempts: 0,
                ..EventsConfig::default()
            },
            EventsConfig {
                tenant_bytes_per_second: 100,
                ..EventsConfig::default()
            },
        ] {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}
