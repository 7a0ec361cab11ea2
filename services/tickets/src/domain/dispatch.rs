//! Dispatch (003 service section): the engineer with the category's
//! skill, on duty, with the lightest open load; a tie goes to the one idle
//! longest (never assigned counts as idle longest), then to the smaller id
//! so the choice is stable.

/// An engineer who has the skill and is on duty, with the open load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub open: u64,
    pub last_assigned_time: Option<i64>,
}

pub fn choose(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.iter().min_by(|a, b| {
        a.open
            .cmp(&b.open)
            .then_with(|| {
                a.last_assigned_time
                    .unwrap_or(i64::MIN)
                    .cmp(&b.last_assigned_time.unwrap_or(i64::MIN))
            })
            .then_with(|| a.id.cmp(&b.id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, open: u64, last: Option<i64>) -> Candidate {
        Candidate {
            id: id.into(),
            open,
            last_assigned_time: last,
        }
    }

    #[test]
    fn the_lightest_load_wins() {
        let all = [c("a", 3, None), c("b", 1, Some(10)), c("c", 2, None)];
        assert_eq!(choose(&all).map(|x| x.id.as_str()), Some("b"));
    }

    #[test]
    fn a_tie_goes_to_the_longest_idle() {
        let all = [
            c("a", 1, Some(20)),
            c("b", 1, Some(10)),
            c("c", 1, Some(30)),
        ];
        assert_eq!(choose(&all).map(|x| x.id.as_str()), Some("b"));
        let never = [c("a", 1, Some(20)), c("z", 1, None)];
        assert_eq!(choose(&never).map(|x| x.id.as_str()), Some("z"));
    }

    #[test]
    fn nobody_is_no_choice() {
        assert_eq!(choose(&[]), None);
    }
}
