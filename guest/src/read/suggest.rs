//! "Did you mean": names close to one that was not found.

/// Up to `max` candidates closest to `wanted`: names containing it (or contained in it) first, then
/// by edit distance, ignoring case.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>, max: usize) -> Vec<String> {
    let wanted = wanted.to_lowercase();
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(u8, usize, &str)> = Vec::new();
    for name in candidates {
        let lower = name.to_lowercase();
        let score = if lower.contains(&wanted) || (lower.len() >= 4 && wanted.contains(&lower)) {
            Some((0, lower.len().abs_diff(wanted.len())))
        } else {
            let d = distance(&wanted, &lower);
            (d <= limit).then_some((1, d))
        };
        if let Some((tier, d)) = score {
            scored.push((tier, d, name));
        }
    }
    scored.sort_by(|a, b| (a.0, a.1, a.2.len(), a.2).cmp(&(b.0, b.1, b.2.len(), b.2)));
    let mut out: Vec<String> = Vec::new();
    for (_, _, name) in scored {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_come_first() {
        let names = ["CustomerV3", "CustomerGroup", "VendorV2", "CustCustomerV3Entity", "NoYes"];
        assert_eq!(closest("CustomerV2", names, 3), ["CustomerV3"]);
        assert_eq!(closest("customer", names, 3), ["CustomerV3", "CustomerGroup", "CustCustomerV3Entity"]);
        assert_eq!(closest("NoYess", names, 3), ["NoYes"]);
        assert!(closest("Zzzzzzzz", names, 3).is_empty());
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
