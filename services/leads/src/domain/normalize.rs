//! Normal forms for duplicate detection: two spellings of one phone number,
//! email address or company/contact pair compare equal. Every key is taken
//! from the NFKC form, so full-width and compatibility spellings (`ＡＣＭＥ`,
//! `１３８`) equal their plain ones.

use unicode_normalization::UnicodeNormalization;

/// Digits with a leading `+` when the number had one (`00` counts as `+`);
/// `None` unless it has 6 to 15 digits and only phone punctuation.
pub fn phone(raw: &str) -> Option<String> {
    let raw: String = raw.nfkc().collect();
    let raw = raw.trim();
    let (international, rest) = if let Some(rest) = raw.strip_prefix('+') {
        (true, rest)
    } else if let Some(rest) = raw.strip_prefix("00") {
        (true, rest)
    } else {
        (false, raw)
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if !(6..=15).contains(&digits.len()) {
        return None;
    }
    Some(if international {
        format!("+{digits}")
    } else {
        digits
    })
}

/// Lower-cased and trimmed; `None` unless it looks like `local@domain.tld`.
pub fn email(raw: &str) -> Option<String> {
    let email = raw.nfkc().collect::<String>().trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && email.chars().all(|c| !c.is_whitespace() && !c.is_control());
    plausible.then_some(email)
}

/// A name folded for comparison: NFKC, lower case, letters and digits only
/// (so "ACME Ltd." equals "acme ltd" and "ＡＣＭＥ"). Empty for a name of
/// only punctuation or emoji, which names nothing to compare.
pub fn fold(name: &str) -> String {
    name.nfkc()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Company and contact folded together (see [`fold`]), so "ACME Ltd." /
/// "Zhang San" equals "acme ltd" / "zhang  san". `None` without a contact
/// name: a company alone is not a person to call.
pub fn company_contact(company: &str, contact: &str) -> Option<String> {
    let (company, contact) = (fold(company), fold(contact));
    (!company.is_empty() && !contact.is_empty()).then(|| format!("{company}|{contact}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_different_spellings_are_equal() {
        assert_eq!(
            phone("+86 138-0013-8000").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(phone("0086 (138) 0013 8000"), phone("+86 138 0013 8000"));
        assert_eq!(phone("010-6552.1234").as_deref(), Some("01065521234"));
    }

    #[test]
    fn not_phones() {
        assert_eq!(phone("12345"), None);
        assert_eq!(phone("call me"), None);
        assert_eq!(phone("+1 234 567 890 123 456"), None);
        assert_eq!(phone("138 0013 8000 ext 5"), None);
    }

    #[test]
    fn emails() {
        assert_eq!(
            email(" Li.Lei@Example.COM ").as_deref(),
            Some("li.lei@example.com")
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@.com",
            "a@example..com",
        ] {
            assert_eq!(email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn company_and_contact() {
        assert_eq!(
            company_contact("ACME Ltd.", "Zhang San"),
            company_contact(" acme ltd", "zhang  san")
        );
        assert_eq!(
            company_contact("北京科技有限公司", "王五").as_deref(),
            Some("北京科技有限公司|王五")
        );
        assert_eq!(company_contact("ACME", ""), None);
    }

    #[test]
    fn compatibility_spellings_fold_to_one_key() {
        assert_eq!(
            company_contact("ＡＣＭＥ", "Ｌｉ Ｌｅｉ"),
            company_contact("ACME", "li lei")
        );
        assert_eq!(
            phone("＋８６ １３８ ００１３ ８０００"),
            phone("+86 138 0013 8000")
        );
        assert_eq!(email("ＬＩ＠ａｃｍｅ．ｃｎ").as_deref(), Some("li@acme.cn"));
        for nothing in ["...", "!!!", "🚀🚀", "  -- "] {
            assert_eq!(fold(nothing), "", "{nothing:?}");
            assert_eq!(company_contact(nothing, "Li Lei"), None, "{nothing:?}");
        }
    }
}
