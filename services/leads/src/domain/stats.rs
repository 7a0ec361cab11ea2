//! Channel statistics (DOMAIN 1): per source channel, how many leads came
//! in, were qualified, converted or disqualified, and the conversion rate.

use std::collections::BTreeMap;

use super::LeadStatus;

/// One channel's leads in one status, as counted by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    pub channel: String,
    pub status: LeadStatus,
    pub leads: i64,
}

/// One channel's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelStats {
    pub channel: String,
    pub leads: i64,
    /// Qualified at some point: converted leads were qualified first.
    pub qualified: i64,
    pub converted: i64,
    pub disqualified: i64,
    /// Converted leads over all leads of the channel; 0 without leads.
    pub conversion_rate: f64,
}

/// The figures of every channel with leads, by channel name.
pub fn channel_stats(counts: impl IntoIterator<Item = ChannelCount>) -> Vec<ChannelStats> {
    let mut by_channel: BTreeMap<String, ChannelStats> = BTreeMap::new();
    for c in counts {
        let stats = by_channel
            .entry(c.channel.clone())
            .or_insert_with(|| ChannelStats {
                channel: c.channel,
                ..ChannelStats::default()
            });
        stats.leads += c.leads;
        match c.status {
            LeadStatus::Qualified => stats.qualified += c.leads,
            LeadStatus::Converted => {
                stats.qualified += c.leads;
                stats.converted += c.leads;
            }
            LeadStatus::Disqualified => stats.disqualified += c.leads,
            LeadStatus::New | LeadStatus::Working | LeadStatus::Nurturing => {}
        }
    }
    by_channel
        .into_values()
        .map(|mut s| {
            s.conversion_rate = if s.leads == 0 {
                0.0
            } else {
                s.converted as f64 / s.leads as f64
            };
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(channel: &str, status: LeadStatus, leads: i64) -> ChannelCount {
        ChannelCount {
            channel: channel.into(),
            status,
            leads,
        }
    }

    #[test]
    fn converted_leads_count_as_qualified_and_make_the_rate() {
        let stats = channel_stats([
            count("sem", LeadStatus::New, 5),
            count("referral", LeadStatus::Converted, 1),
            count("referral", LeadStatus::Qualified, 1),
            count("referral", LeadStatus::Disqualified, 1),
            count("referral", LeadStatus::Working, 1),
        ]);
        assert_eq!(
            stats,
            vec![
                ChannelStats {
                    channel: "referral".into(),
                    leads: 4,
                    qualified: 2,
                    converted: 1,
                    disqualified: 1,
                    conversion_rate: 0.25,
                },
                ChannelStats {
                    channel: "sem".into(),
                    leads: 5,
                    ..ChannelStats::default()
                },
            ]
        );
    }

    #[test]
    fn a_channel_without_leads_has_a_zero_rate() {
        let stats = channel_stats([count("sem", LeadStatus::Converted, 0)]);
        assert_eq!(stats[0].conversion_rate, 0.0);
    }
}
