//! Money arithmetic of a contract, in integer billionths (i128): line
//! totals, the total, and milestone amounts that add up exactly. No float
//! anywhere; every bound is checked before a value is kept.

use crm_types::{Money, Violation};

use super::model::{LineInput, LineItem, Milestone, MilestoneInput, MilestoneStatus, Share};

const NANOS: i128 = 1_000_000_000;
/// The largest amount anywhere on a contract (a unit price, a line, the
/// total, a milestone), as for opportunities' amounts: 10^12 units.
pub const MAX_AMOUNT_UNITS: i64 = 1_000_000_000_000;
/// The largest quantity of a line.
pub const MAX_QUANTITY: i64 = 1_000_000_000;
/// The most lines a contract has.
pub const MAX_LINES: usize = 200;
/// The most payment milestones a contract has.
pub const MAX_MILESTONES: usize = 50;

fn max_nanos() -> i128 {
    i128::from(MAX_AMOUNT_UNITS) * NANOS
}

/// `a / b` rounded half away from zero (b > 0).
fn div_round(a: i128, b: i128) -> i128 {
    let (q, r) = (a / b, a % b);
    if r.abs() * 2 >= b { q + a.signum() } else { q }
}

fn money(currency: &str, nanos: i128) -> Option<Money> {
    Money::from_total_nanos(currency, nanos)
}

/// Prices `lines` in `currency`: each line's total and the contract's
/// total. Every violation names its field (`lines[2].unit_price`).
pub fn price(
    currency: &str,
    lines: &[LineInput],
) -> Result<(Vec<LineItem>, Money), Vec<Violation>> {
    let mut violations = Vec::new();
    if lines.len() > MAX_LINES {
        violations.push(Violation::new(
            "lines",
            format!("at most {MAX_LINES} lines"),
        ));
        return Err(violations);
    }
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: i128 = 0;
    for (i, line) in lines.iter().enumerate() {
        let field = |f: &str| format!("lines[{i}].{f}");
        if line.unit_price.currency != currency {
            violations.push(Violation::new(
                field("unit_price.currency_code"),
                format!("must be the contract's currency {currency}"),
            ));
            continue;
        }
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            violations.push(Violation::new(
                field("quantity"),
                format!("must be 1 to {MAX_QUANTITY}"),
            ));
            continue;
        }
        let price = line.unit_price.total_nanos();
        if price < 0 || price > max_nanos() {
            violations.push(Violation::new(
                field("unit_price"),
                format!("must be 0 to {MAX_AMOUNT_UNITS} units"),
            ));
            continue;
        }
        if line.discount_percent > 100 {
            violations.push(Violation::new(
                field("discount_percent"),
                "must be 0 to 100",
            ));
            continue;
        }
        // At most 10^9 x 10^21 x 100: far inside i128.
        let gross = i128::from(line.quantity) * price * i128::from(100 - line.discount_percent);
        let line_total = div_round(gross, 100);
        let Some(line_money) = money(currency, line_total).filter(|_| line_total <= max_nanos())
        else {
            violations.push(Violation::new(
                field("quantity"),
                format!("the line's total must be at most {MAX_AMOUNT_UNITS} units"),
            ));
            continue;
        };
        total += line_total;
        priced.push(LineItem {
            item: line.item.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price.clone(),
            discount_percent: line.discount_percent,
            line_total: line_money,
        });
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    match money(currency, total).filter(|_| total <= max_nanos()) {
        Some(total) => Ok((priced, total)),
        None => Err(vec![Violation::new(
            "lines",
            format!("the contract's total must be at most {MAX_AMOUNT_UNITS} units"),
        )]),
    }
}

/// The milestones of a contract with `total`: each one's amount (a
/// percentage rounded down to the billionth, the last percentage
/// milestone taking the remainder), refused unless they add up to the
/// total exactly. `ids` gives each new milestone its id.
pub fn milestones(
    total: &Money,
    inputs: &[MilestoneInput],
    mut ids: impl FnMut() -> String,
) -> Result<Vec<Milestone>, Vec<Violation>> {
    if inputs.len() > MAX_MILESTONES {
        return Err(vec![Violation::new(
            "milestones",
            format!("at most {MAX_MILESTONES} milestones"),
        )]);
    }
    let currency = total.currency.as_str();
    let total_nanos = total.total_nanos();
    let mut violations = Vec::new();
    let mut fixed: i128 = 0;
    let mut percent: i128 = 0;
    for (i, m) in inputs.iter().enumerate() {
        match &m.share {
            Share::Amount(a) if a.currency != currency => violations.push(Violation::new(
                format!("milestones[{i}].fixed_amount.currency_code"),
                format!("must be the contract's currency {currency}"),
            )),
            Share::Amount(a) if a.total_nanos() <= 0 || a.total_nanos() > max_nanos() => violations
                .push(Violation::new(
                    format!("milestones[{i}].fixed_amount"),
                    format!("must be more than 0 and at most {MAX_AMOUNT_UNITS} units"),
                )),
            Share::Amount(a) => fixed += a.total_nanos(),
            Share::Percent(p) if !(1..=100).contains(p) => violations.push(Violation::new(
                format!("milestones[{i}].percent"),
                "must be 1 to 100",
            )),
            Share::Percent(p) => percent += i128::from(*p),
        }
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    // fixed + total x percent / 100 == total, exactly.
    if fixed * 100 + total_nanos * percent != total_nanos * 100 {
        return Err(vec![Violation::new(
            "milestones",
            format!(
                "MILESTONES_DO_NOT_ADD_UP: the fixed amounts and percentages must add up to the total {total}"
            ),
        )]);
    }
    let last_percent = inputs
        .iter()
        .rposition(|m| matches!(m.share, Share::Percent(_)));
    let mut shares: Vec<i128> = inputs
        .iter()
        .map(|m| match &m.share {
            Share::Amount(a) => a.total_nanos(),
            Share::Percent(p) => total_nanos * i128::from(*p) / 100,
        })
        .collect();
    if let Some(last) = last_percent {
        let others: i128 = shares
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != last)
            .map(|(_, v)| *v)
            .sum();
        if let Some(share) = shares.get_mut(last) {
            *share = total_nanos - others;
        }
    }
    let mut out = Vec::with_capacity(inputs.len());
    for (i, (m, share)) in inputs.iter().zip(shares).enumerate() {
        let Some(amount) = money(currency, share) else {
            return Err(vec![Violation::new(
                format!("milestones[{i}]"),
                "the amount does not fit",
            )]);
        };
        out.push(Milestone {
            id: ids(),
            version: 1,
            name: m.name.clone(),
            due_date: m.due_date,
            share: m.share.clone(),
            amount,
            status: MilestoneStatus::Planned,
            erp_reference: String::new(),
            invoice_time: None,
            paid_time: None,
            overdue_time: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crm_types::Date;

    fn line(q: i64, units: i64, nanos: i32, d: u8) -> LineInput {
        LineInput {
            item: "x".into(),
            quantity: q,
            unit_price: Money::new("CNY", units, nanos),
            discount_percent: d,
        }
    }

    fn ms(shares: Vec<Share>) -> Vec<MilestoneInput> {
        shares
            .into_iter()
            .map(|share| MilestoneInput {
                name: "m".into(),
                due_date: Date::new(2027, 1, 1).unwrap(),
                share,
            })
            .collect()
    }

    #[test]
    fn line_totals_apply_the_discount_exactly_and_round_half_up() {
        let (lines, total) = price(
            "CNY",
            &[line(3, 100, 0, 10), line(1, 0, 5, 50), line(1, 0, 3, 50)],
        )
        .unwrap();
        assert_eq!(lines[0].line_total, Money::new("CNY", 270, 0));
        // 2.5 nanos rounds to 3, 1.5 to 2.
        assert_eq!(lines[1].line_total, Money::new("CNY", 0, 3));
        assert_eq!(lines[2].line_total, Money::new("CNY", 0, 2));
        assert_eq!(total, Money::new("CNY", 270, 5));
    }

    #[test]
    fn bad_lines_name_their_field() {
        let mut usd = line(1, 1, 0, 0);
        usd.unit_price.currency = "USD".into();
        let errs = price(
            "CNY",
            &[
                line(-1, 1, 0, 0),
                line(1, -5, 0, 0),
                line(1, 1, 0, 101),
                usd,
            ],
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lines[0].quantity",
                "lines[1].unit_price",
                "lines[2].discount_percent",
                "lines[3].unit_price.currency_code"
            ]
        );
    }

    #[test]
    fn totals_are_bounded_without_overflow() {
        let errs = price("CNY", &[line(MAX_QUANTITY, MAX_AMOUNT_UNITS, 0, 0)]).unwrap_err();
        assert_eq!(errs[0].field, "lines[0].quantity");
        let many: Vec<LineInput> = (0..3).map(|_| line(1, 600_000_000_000, 0, 0)).collect();
        let errs = price("CNY", &many).unwrap_err();
        assert_eq!(errs[0].field, "lines");
        let errs = price("CNY", &vec![line(1, 1, 0, 0); MAX_LINES + 1]).unwrap_err();
        assert_eq!(errs[0].field, "lines");
    }

    #[test]
    fn milestones_must_add_up_and_percentages_take_the_remainder_last() {
        let total = Money::new("CNY", 100, 1);
        let out = milestones(
            &total,
            &ms(vec![Share::Percent(30), Share::Percent(70)]),
            || "id".into(),
        )
        .unwrap();
        // 30% of 100.000000001 rounds down; the last takes the rest.
        assert_eq!(out[0].amount, Money::new("CNY", 30, 0));
        assert_eq!(out[1].amount, Money::new("CNY", 70, 1));
        let mixed = milestones(
            &Money::new("CNY", 100, 0),
            &ms(vec![
                Share::Amount(Money::new("CNY", 40, 0)),
                Share::Percent(60),
            ]),
            || "id".into(),
        )
        .unwrap();
        assert_eq!(mixed[1].amount, Money::new("CNY", 60, 0));
        let short = milestones(
            &Money::new("CNY", 100, 0),
            &ms(vec![
                Share::Amount(Money::new("CNY", 40, 0)),
                Share::Percent(50),
            ]),
            || "id".into(),
        )
        .unwrap_err();
        assert_eq!(short[0].field, "milestones");
        let other_currency = milestones(
            &Money::new("CNY", 100, 0),
            &ms(vec![Share::Amount(Money::new("USD", 100, 0))]),
            || "id".into(),
        )
        .unwrap_err();
        assert_eq!(
            other_currency[0].field,
            "milestones[0].fixed_amount.currency_code"
        );
    }
}
