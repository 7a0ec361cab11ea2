//! The text the full-text index holds and the terms a query asks for:
//! words in lower case, and CJK runs split into overlapping character
//! bigrams (the databases' tokenizers do not segment Chinese), the same on
//! both sides so that a query bigram meets an indexed one.

/// The most terms a query carries: a long description is cut, not a
/// query of unbounded cost.
pub const MAX_QUERY_TOKENS: usize = 32;

/// Common English words that match nearly every ticket.
const STOP: [&str; 24] = [
    "the", "and", "for", "with", "not", "this", "that", "from", "are", "was", "but", "our", "you",
    "can", "has", "have", "its", "into", "all", "any", "when", "after", "is", "it",
];

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The tokens of `text`, in order, with repeats.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if word.chars().count() >= 2 && !STOP.contains(&word.as_str()) {
            out.push(std::mem::take(word));
        } else {
            word.clear();
        }
    };
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.push(run.iter().collect()),
            _ => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
        run.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_run(&mut run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// The derived text indexed for a resolved ticket.
pub fn search_text(subject: &str, description: &str) -> String {
    let mut t = tokens(subject);
    t.extend(tokens(description));
    t.join(" ")
}

/// The distinct terms of a query, at most [`MAX_QUERY_TOKENS`]: letters
/// and digits only, so they are safe in either database's query syntax.
pub fn search_terms(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tokens(text)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .take(MAX_QUERY_TOKENS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_case_without_stop_words() {
        assert_eq!(
            search_text("Report EXPORT fails", "for the PDF"),
            "report export fails pdf"
        );
    }

    #[test]
    fn chinese_runs_become_bigrams() {
        assert_eq!(search_text("报表导出异常", ""), "报表 表导 导出 出异 异常");
        assert_eq!(search_terms("导出 v2 报表"), vec!["导出", "v2", "报表"]);
    }

    #[test]
    fn terms_are_distinct_and_bounded() {
        let long = (0..100)
            .map(|i| format!("w{i} w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let terms = search_terms(&long);
        assert_eq!(terms.len(), MAX_QUERY_TOKENS);
        assert!(terms.iter().all(|t| t.chars().all(char::is_alphanumeric)));
    }
}
